"""Text models on disk: a maskzoo model directory plus the tokenizer (kept in ``config.json``) that owns its special ids.

``load_text_model`` takes a directory or a zoo name (the embedded default is ``text-char-shakespeare``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.text.tokenizer import CharTokenizer
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

DEFAULT_MODEL = "text-char-shakespeare"


def embedded_dir(name: str = DEFAULT_MODEL) -> Path:
    """Directory of an embedded text model shipped as package data."""
    return Path(str(files("maskzoo.core.text") / "zoo" / name))


def build_text_model(tokenizer: CharTokenizer, **arch) -> DiffusionTransformer:
    """A fresh :class:`DiffusionTransformer` whose vocabulary and mask id come from ``tokenizer``."""
    cfg = TransformerConfig(vocab_size=tokenizer.vocab_size, mask_token_id=tokenizer.mask_id, **arch)
    return DiffusionTransformer(cfg)


def save_text_model(model: DiffusionTransformer, tokenizer: CharTokenizer, out_dir: str | Path,
                    extra: dict | None = None) -> None:
    """Write ``config.json`` (with the tokenizer under ``extra.tokenizer``) + ``model.safetensors``, atomically."""
    from maskzoo.core.checkpoint import save_model

    save_model(model, out_dir, extra={**(extra or {}), "tokenizer": tokenizer.to_json()})


def load_text_model(path_or_name: str | Path | None = None, device: str | torch.device = "cpu"
                    ) -> tuple[DiffusionTransformer, CharTokenizer]:
    """Load a text model directory (or the embedded default when ``None`` / its zoo name)."""
    from maskzoo.core.checkpoint import load_model

    if path_or_name is None or str(path_or_name) == DEFAULT_MODEL:
        path = embedded_dir()
        if not (path / "model.safetensors").is_file():
            raise UserError(f"the embedded text model is missing from this installation ({path})")
    else:
        path = Path(path_or_name)
        if not path.exists():
            raise UserError(f"checkpoint not found: {path}")
    model = load_model(path, device=device)
    tok_json = (getattr(model, "checkpoint_extra", None) or {}).get("tokenizer")
    if tok_json is None:
        raise UserError(f"{path} has no tokenizer in config.json: not a maskzoo text model directory")
    tokenizer = CharTokenizer.from_json(tok_json)
    if model.mask_id != tokenizer.mask_id:
        raise UserError(f"{path}: config mask_token_id {model.mask_id} disagrees with its tokenizer")
    return model, tokenizer
