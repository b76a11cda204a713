"""Vision checkpoints: the core's maskzoo directory format plus the tokenizer files.

A directory::

    config.json         {"format": "maskzoo", "architecture": "VisionLanguageModel", "config": {...}, "extra": {...}}
    model.safetensors   tower, projector and language model (``tower.backbone.*``, ``projector.*``, ``lm.*``)
    vocab.json | tokenizer.json   the tokenizer named by ``config.tokenizer``

so :func:`maskzoo.core.load_model` loads the model alone, and :func:`load_vision_model` returns the model with
its tokenizer. A directory in the published LLaDA-V layout (``"model_type": "llava_llada"``) is read by
:mod:`maskzoo.vision.llava_format`; the embedded default is the registry name :data:`DEFAULT_MODEL`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir
from maskzoo.vision.model import VisionLanguageModel
from maskzoo.vision.tokenizer import Tokenizer, load_tokenizer

DEFAULT_MODEL = "vision-scenes-captioner"


def save_vision_model(model: VisionLanguageModel, tokenizer: Tokenizer, path: str | os.PathLike,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write model + tokenizer to directory ``path`` atomically (all or nothing)."""
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_dir(path) as tmp:
        spec = tokenizer.save(tmp)
        cfg = model.config.to_dict()
        cfg["tokenizer"] = spec
        cfg["tower"] = {**cfg["tower"], "weights": None}  # the weights are in model.safetensors now
        meta = {"format": "maskzoo", "format_version": 1, "architecture": "VisionLanguageModel", "config": cfg}
        if extra:
            meta["extra"] = extra
        state = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_vision_model(path_or_name: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                      dtype: torch.dtype | None = None) -> tuple[VisionLanguageModel, Tokenizer]:
    """(model in eval mode, tokenizer) from a maskzoo vision dir, a LLaDA-V dir, or a zoo name (None: default).
    ``dtype`` casts the floating-point weights (e.g. ``torch.bfloat16`` on a GPU, as LLaDA-V runs)."""
    from maskzoo.core.checkpoint import load_model, read_config
    from maskzoo.vision import llava_format, zoo

    target = DEFAULT_MODEL if path_or_name is None else path_or_name
    path = Path(target)
    if not path.exists():
        entry_dir = zoo.weights_dir(str(target))
        if entry_dir is None:
            raise UserError(f"checkpoint not found: {target}")
        path = entry_dir
    if not path.is_dir():
        raise UserError(f"{path}: a checkpoint is a directory with config.json, not a file")
    meta = read_config(path)
    if llava_format.is_llava_llada_config(meta):
        return llava_format.load_llava_llada(path, device, dtype)
    if meta.get("format") != "maskzoo" or meta.get("architecture") != "VisionLanguageModel":
        raise UserError(f"{path}: not a vision-language checkpoint (architecture {meta.get('architecture')!r})")
    model = load_model(path, device=device, dtype=dtype)
    tok = load_tokenizer(path, model.config.tokenizer)
    if tok.image_id != model.config.image_token_id or tok.mask_id != model.mask_id:
        raise UserError(f"{path}: tokenizer and model disagree on the <image> or mask token")
    return model, tok
