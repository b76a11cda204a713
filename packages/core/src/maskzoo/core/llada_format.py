"""The published LLaDA checkpoint layout (GSAI-ML/LLaDA-8B-Base and -Instruct; Nie et al. 2025, arXiv 2502.09992).

A directory with ``config.json`` (``"model_type": "llada"``, OLMo-style field names) and ``model.safetensors``
or shards listed in ``model.safetensors.index.json``. This module only translates *data*: config fields to a
:class:`~maskzoo.core.transformer.TransformerConfig` and tensor names to ours. No code from the checkpoint
(``auto_map``, ``modeling_llada.py``) is ever imported or run.

Tensor names (published -> maskzoo)::

    model.transformer.wte.weight                  -> embed.weight
    model.transformer.blocks.{i}.attn_norm.weight -> blocks.{i}.attn_norm.weight
    model.transformer.blocks.{i}.q_proj.weight    -> blocks.{i}.attn.q_proj.weight   (k_proj, v_proj alike)
    model.transformer.blocks.{i}.attn_out.weight  -> blocks.{i}.attn.o_proj.weight
    model.transformer.blocks.{i}.ff_norm.weight   -> blocks.{i}.mlp_norm.weight
    model.transformer.blocks.{i}.ff_proj.weight   -> blocks.{i}.mlp.gate_proj.weight (the SiLU branch)
    model.transformer.blocks.{i}.up_proj.weight   -> blocks.{i}.mlp.up_proj.weight
    model.transformer.blocks.{i}.ff_out.weight    -> blocks.{i}.mlp.down_proj.weight
    model.transformer.ln_f.weight                 -> norm.weight
    model.transformer.ff_out.weight               -> lm_head.weight                  (absent when weight_tying)
"""

from __future__ import annotations

import re
from typing import Any

from maskzoo.core.errors import UserError
from maskzoo.core.transformer import TransformerConfig

__all__ = ["LLADA_MASK_TOKEN_ID", "config_from_llada", "is_llada_config", "key_from_llada", "key_to_llada"]

#: [MASK] id of the published LLaDA tokenizer, used only when a LLaDA config.json omits ``mask_token_id``.
LLADA_MASK_TOKEN_ID = 126336

_PREFIX = "model.transformer."
_BLOCK_NAMES = {
    "attn_norm": "attn_norm",
    "q_proj": "attn.q_proj",
    "k_proj": "attn.k_proj",
    "v_proj": "attn.v_proj",
    "attn_out": "attn.o_proj",
    "ff_norm": "mlp_norm",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
_TOP_NAMES = {"wte": "embed", "ln_f": "norm", "ff_out": "lm_head"}
_BLOCK_RE = re.compile(r"^model\.transformer\.blocks\.(\d+)\.(\w+)\.weight$")
_TOP_RE = re.compile(r"^model\.transformer\.(\w+)\.weight$")

# Published options this architecture implements, with the only value we accept (else: clear error).
_REQUIRED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "rope": True,
    "alibi": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "bias_for_layer_norm": False,
    "attention_layer_norm": False,
    "input_emb_norm": False,
    "scale_logits": False,
    "block_group_size": 1,
    "layer_norm_with_affine": True,
}


def is_llada_config(cfg: dict[str, Any]) -> bool:
    return cfg.get("model_type") == "llada"


def config_from_llada(cfg: dict[str, Any]) -> TransformerConfig:
    """TransformerConfig from a published LLaDA config.json dict; unsupported options raise UserError."""
    bad = [f"{k}={cfg[k]!r}" for k, want in _REQUIRED.items() if k in cfg and cfg[k] not in (want, None)]
    if bad:
        raise UserError(f"LLaDA config: unsupported option(s) {', '.join(bad)}")
    missing = [k for k in ("d_model", "n_heads", "n_layers") if k not in cfg]
    if missing:
        raise UserError(f"LLaDA config: missing field(s) {missing}")
    d_model, n_heads = int(cfg["d_model"]), int(cfg["n_heads"])
    n_kv = cfg.get("n_kv_heads")
    if n_kv is None:
        n_kv = 1 if cfg.get("multi_query_attention") else n_heads
    hidden = cfg.get("mlp_hidden_size") or int(cfg.get("mlp_ratio", 4)) * d_model
    vocab = cfg.get("embedding_size") or cfg.get("vocab_size")
    if vocab is None:
        raise UserError("LLaDA config: missing field(s) ['vocab_size']")
    mask_id = cfg.get("mask_token_id", LLADA_MASK_TOKEN_ID)
    return TransformerConfig(
        vocab_size=int(vocab),
        d_model=d_model,
        n_layers=int(cfg["n_layers"]),
        n_heads=n_heads,
        n_kv_heads=int(n_kv),
        mlp_hidden=int(hidden),
        max_seq_len=int(cfg.get("max_sequence_length", 4096)),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        norm_eps=float(cfg.get("rms_norm_eps", 1e-5)),
        mask_token_id=int(mask_id),
        causal=False,
        tie_embeddings=bool(cfg.get("weight_tying", False)),
    )


def key_from_llada(key: str) -> str | None:
    """maskzoo name of a published tensor name, or None if it is not part of this architecture."""
    m = _BLOCK_RE.match(key)
    if m:
        name = _BLOCK_NAMES.get(m.group(2))
        return None if name is None else f"blocks.{m.group(1)}.{name}.weight"
    m = _TOP_RE.match(key)
    if m and m.group(1) in _TOP_NAMES:
        return f"{_TOP_NAMES[m.group(1)]}.weight"
    return None


_INV_BLOCK = {v: k for k, v in _BLOCK_NAMES.items()}
_INV_TOP = {v: k for k, v in _TOP_NAMES.items()}
_OUR_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.([\w.]+)\.weight$")


def key_to_llada(key: str) -> str:
    """Published tensor name of a maskzoo tensor name (inverse of :func:`key_from_llada`)."""
    m = _OUR_BLOCK_RE.match(key)
    if m and m.group(2) in _INV_BLOCK:
        return f"{_PREFIX}blocks.{m.group(1)}.{_INV_BLOCK[m.group(2)]}.weight"
    stem = key.removesuffix(".weight")
    if stem in _INV_TOP:
        return f"{_PREFIX}{_INV_TOP[stem]}.weight"
    raise KeyError(key)
