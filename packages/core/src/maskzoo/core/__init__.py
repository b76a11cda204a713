"""maskzoo.core: the modality-agnostic masked (absorbing-state) discrete diffusion core.

Public API (stable; see DESIGN.md)::

    from maskzoo.core import load_model, generate

    model = load_model(path_or_name)   # maskzoo dir, a published LLaDA checkpoint dir, or a zoo name
    logits = model(input_ids)          # [B, L] -> [B, L, V]
    out = generate(model, prompt_ids, gen_length=64, steps=64, block_length=64, temperature=0.0,
                   remasking="low_confidence", mask_id=None)   # -> [B, P + gen_length]
"""

from maskzoo.core.checkpoint import load_model, save_model
from maskzoo.core.errors import UserError
from maskzoo.core.registry import create_model, list_models, register_model
from maskzoo.core.sampling import generate
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

__all__ = [
    "DiffusionTransformer",
    "TransformerConfig",
    "UserError",
    "create_model",
    "generate",
    "list_models",
    "load_model",
    "register_model",
    "save_model",
]
