"""maskzoo.core: the modality-agnostic masked (absorbing-state) discrete diffusion core.

Public API (stable; see DESIGN.md)::

    from maskzoo.core import load_model, generate

    model = load_model(path_or_name)   # maskzoo dir, a published LLaDA checkpoint dir, or a zoo name
    logits = model(input_ids)          # [B, L] -> [B, L, V]
    out = generate(model, prompt_ids, gen_length=64, steps=64, block_length=64, temperature=0.0,
                   remasking="low_confidence", mask_id=None)   # -> [B, P + gen_length]

One-call helpers that use the checkpoint's own sampling settings (its ``generation`` block)::

    from maskzoo.core import generate_text, load_pipeline

    print(generate_text("ROMEO:", seed=0))        # the embedded character-level model
    pipe = load_pipeline("text-char-shakespeare")  # .model, .tokenizer, .encode(), .decode(), .generate()

Names are imported on first use (PEP 562), so ``import maskzoo.core`` (and the ``maskzoo`` command's help)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DiffusionTransformer": "maskzoo.core.transformer",
    "TransformerConfig": "maskzoo.core.transformer",
    "UserError": "maskzoo.core.errors",
    "create_model": "maskzoo.core.registry",
    "generate": "maskzoo.core.sampling",
    "generate_text": "maskzoo.core.text.pipeline",
    "list_models": "maskzoo.core.registry",
    "load_model": "maskzoo.core.checkpoint",
    "load_pipeline": "maskzoo.core.text.pipeline",
    "register_model": "maskzoo.core.registry",
    "save_model": "maskzoo.core.checkpoint",
}

__all__ = [
    "DiffusionTransformer",
    "TransformerConfig",
    "UserError",
    "create_model",
    "generate",
    "generate_text",
    "list_models",
    "load_model",
    "load_pipeline",
    "register_model",
    "save_model",
]

if TYPE_CHECKING:  # pragma: no cover
    from maskzoo.core.checkpoint import load_model, save_model
    from maskzoo.core.errors import UserError
    from maskzoo.core.registry import create_model, list_models, register_model
    from maskzoo.core.sampling import generate
    from maskzoo.core.text.pipeline import generate_text, load_pipeline
    from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'maskzoo.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
