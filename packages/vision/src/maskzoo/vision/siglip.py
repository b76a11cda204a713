"""SigLIP weights in the Hugging Face layout -> timm's VisionTransformer names (data only).

HF ``SiglipVisionModel`` (used by LLaDA-V for ``siglip2-so400m-patch14-384``) keeps separate q/k/v
projections and a learned position table; timm fuses q, k, v into one ``qkv`` projection::

    embeddings.patch_embedding.{weight,bias}        -> patch_embed.proj.{weight,bias}
    embeddings.position_embedding.weight  [N, D]    -> pos_embed  [1, N, D]
    encoder.layers.{i}.self_attn.{q,k,v}_proj.*     -> blocks.{i}.attn.qkv.*   (concatenated q, k, v)
    encoder.layers.{i}.self_attn.out_proj.*         -> blocks.{i}.attn.proj.*
    encoder.layers.{i}.layer_norm{1,2}.*            -> blocks.{i}.norm{1,2}.*
    encoder.layers.{i}.mlp.fc{1,2}.*                -> blocks.{i}.mlp.fc{1,2}.*
    post_layernorm.*                                -> norm.*
    head.* (attention-pool head)                    -> dropped (towers read patch tokens)
"""

from __future__ import annotations

import re

import torch

_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_QKV = re.compile(r"^self_attn\.([qkv])_proj\.(weight|bias)$")
_NAMES = {"self_attn.out_proj": "attn.proj", "layer_norm1": "norm1", "layer_norm2": "norm2", "mlp.fc1": "mlp.fc1",
          "mlp.fc2": "mlp.fc2"}
_SIMPLE = {"embeddings.patch_embedding.weight": "patch_embed.proj.weight",
           "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
           "embeddings.position_embedding.weight": "pos_embed",
           "post_layernorm.weight": "norm.weight", "post_layernorm.bias": "norm.bias"}


def is_hf_siglip(state: dict[str, torch.Tensor], prefix: str = "vision_model.") -> bool:
    return prefix + "embeddings.patch_embedding.weight" in state


def hf_siglip_to_timm(state: dict[str, torch.Tensor], prefix: str = "vision_model.",
                      ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Tensors under ``prefix`` renamed for timm; returns (state, unknown keys). Keys outside ``prefix``
    (a text tower, a logit scale) are ignored; ``head.*`` is dropped."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    unknown: list[str] = []
    for key, t in state.items():
        if not key.startswith(prefix):
            continue
        k = key[len(prefix):]
        if k.startswith("head."):
            continue
        if k in _SIMPLE:
            out[_SIMPLE[k]] = t[None] if k.endswith("position_embedding.weight") else t  # [N, D] -> [1, N, D]
            continue
        m = _LAYER.match(k)
        if m and (q := _QKV.match(m.group(2))):
            qkv.setdefault(f"blocks.{m.group(1)}.attn.qkv.{q.group(2)}", {})[q.group(1)] = t
            continue
        stem, _, leaf = m.group(2).rpartition(".") if m else ("", "", "")
        if m and stem in _NAMES:
            out[f"blocks.{m.group(1)}.{_NAMES[stem]}.{leaf}"] = t
        else:
            unknown.append(key)
    for name, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            unknown.append(name)
        else:
            out[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)  # [3D, ...]
    return out, unknown
