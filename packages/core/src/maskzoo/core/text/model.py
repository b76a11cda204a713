"""Text models on disk: a maskzoo model directory plus the tokenizer (kept in ``config.json``) that owns its special ids.

``load_text_model`` takes a model directory, a zoo name (the embedded default is ``text-char-shakespeare``), a
training run directory (its exported model, else its latest checkpoint) or a step checkpoint of ``text train``.
Exported models carry a ``generation`` block (:mod:`maskzoo.core.generation_config`) with their best sampling
settings; :data:`DEFAULT_GENERATION` is what ``text train`` writes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.text.tokenizer import CharTokenizer
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

DEFAULT_MODEL = "text-char-shakespeare"
DEFAULT_GENERATION = {"gen_length": 128, "temperature": 0.5, "top_p": 0.8, "remasking": "random"}
"""Sampling settings written into every exported text model (``extra.generation`` of config.json): random order,
sampled, because confidence-ordered decoding of small character models collapses into repetitions (see the
embedded model's card)."""


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

    extra = {"generation": dict(DEFAULT_GENERATION), **(extra or {})}
    save_model(model, out_dir, extra={**extra, "tokenizer": tokenizer.to_json()})


def load_text_model(path_or_name: str | Path | None = None, device: str | torch.device = "cpu"
                    ) -> tuple[DiffusionTransformer, CharTokenizer]:
    """Load a text model (module docstring; the embedded default when ``None`` / its zoo name), in eval mode."""
    from maskzoo.core.checkpoint import load_model
    from maskzoo.core.cli_options import is_step_checkpoint, resolve_checkpoint

    if path_or_name is None or str(path_or_name) == DEFAULT_MODEL:
        path = embedded_dir()
        if not (path / "model.safetensors").is_file():
            raise UserError(f"the embedded text model is missing from this installation ({path})")
    else:
        path = Path(path_or_name)
        if not path.exists():
            raise UserError(f"checkpoint not found: {path}")
        path = Path(resolve_checkpoint(path, steps_ok=True))
        if is_step_checkpoint(path):
            return load_text_step_checkpoint(path, device=device)
    model = load_model(path, device=device)
    tok_json = (getattr(model, "checkpoint_extra", None) or {}).get("tokenizer")
    if tok_json is None:
        raise UserError(f"{path} has no tokenizer in config.json: not a maskzoo text model directory")
    tokenizer = CharTokenizer.from_json(tok_json)
    if model.mask_id != tokenizer.mask_id:
        raise UserError(f"{path}: config mask_token_id {model.mask_id} disagrees with its tokenizer")
    return model, tokenizer


def load_text_step_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                              ) -> tuple[DiffusionTransformer, CharTokenizer]:
    """A ``text train`` step checkpoint: the model is rebuilt from the run's recipe (``config.yaml``) and data."""
    import safetensors.torch

    from maskzoo.core.config import load_config
    from maskzoo.core.text.data import read_text
    from maskzoo.core.text.train import OBJECTIVES, TextRecipe

    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise UserError(f"{path}: a step checkpoint without its config.yaml; cannot rebuild the model")
    recipe = load_config(TextRecipe, path / "config.yaml")
    if recipe.objective not in OBJECTIVES:
        raise UserError(f"{path / 'config.yaml'}: objective '{recipe.objective}' is not one of {', '.join(OBJECTIVES)}")
    tok = CharTokenizer.from_text(read_text(recipe.data.path))
    a = recipe.model
    model = build_text_model(tok, causal=OBJECTIVES[recipe.objective][1], d_model=a.d_model, n_layers=a.n_layers,
                             n_heads=a.n_heads, mlp_hidden=a.mlp_hidden, max_seq_len=a.max_seq_len)
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(path / "model.safetensors"), strict=False)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise UserError(f"{path / 'model.safetensors'}: cannot read weights ({str(e).splitlines()[0]})") from None
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the recipe's model (missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]})")
    model.checkpoint_extra = {"tokenizer": tok.to_json(), "generation": dict(DEFAULT_GENERATION)}
    return model.to(device).eval(), tok
