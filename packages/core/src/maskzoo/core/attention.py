"""Scaled dot-product attention through one function, with interchangeable backends and mask helpers.

For queries ``q`` [B, H, Lq, D], keys ``k`` and values ``v`` [B, Hkv, Lk, D] and a boolean mask ``M``
(True = query i may attend to key j),

    attention(q, k, v)_i = sum_j softmax_j( q_i . k_j / sqrt(D) + log M_ij ) v_j            (Vaswani et al. 2017)

Grouped-query attention (GQA, Ainslie et al. 2023): when Hkv < H, query head h reads key/value head
``h // (H // Hkv)`` (``repeat_interleave`` order, as in LLaDA, Nie et al. 2025, arXiv 2502.09992). SDPA reads the
shared heads in place (``enable_gqa``); the other backends expand them.

A query row whose mask is all False (e.g. a fully padded row) has no distribution to normalise; every backend
returns zeros for it instead of NaN.

Backends (one dict lookup, ``BACKENDS``):

- ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (default; CPU and GPU).
- ``"xformers"``: ``xformers.ops.memory_efficient_attention`` (Rabe & Staats 2021); CUDA only. Detected once,
  lazily; with ``backend=None`` it is used for CUDA tensors when importable, otherwise SDPA. It runs unmasked and
  causal attention; any other mask would need a dense [B, H, Lq, Lk] bias, so masked calls go to SDPA instead
  (which takes the boolean mask as it is, broadcast, never expanded).
- ``"eager"``: the explicit softmax above; the reference the others are tested against.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from maskzoo.core.errors import UserError

__all__ = [
    "BACKENDS",
    "attention",
    "available_backends",
    "block_causal_mask",
    "block_diagonal_mask",
    "causal_mask",
    "padding_mask",
    "resolve_backend",
    "xformers_available",
]


# ----------------------------------------------------------------------------------------------- masks


def padding_mask(attention_mask: torch.Tensor, *, queries: bool = False) -> torch.Tensor:
    """Boolean attention mask from a padding mask ``attention_mask`` [B, L] (1/True = real token).

    With ``queries=False`` (default) the result is [B, 1, 1, L]: every query may attend to every real key.
    With ``queries=True`` it is [B, 1, L, L] and padded query rows attend to nothing (their output is zero).
    """
    real = attention_mask.bool()  # [B, L]
    if real.dim() != 2:
        raise ValueError(f"attention_mask must be [B, L], got shape {tuple(attention_mask.shape)}")
    if not queries:
        return real[:, None, None, :]  # [B, 1, 1, L]
    return real[:, None, :, None] & real[:, None, None, :]  # [B, 1, L, L]


def block_diagonal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """Mask for packed sequences: token i may attend to token j iff both belong to the same segment.

    ``segment_ids`` [B, L] integer; a negative id marks padding, which attends to nothing and is attended by
    nothing. Returns [B, 1, L, L].
    """
    if segment_ids.dim() != 2:
        raise ValueError(f"segment_ids must be [B, L], got shape {tuple(segment_ids.shape)}")
    same = segment_ids[:, :, None] == segment_ids[:, None, :]  # [B, L, L]
    real = segment_ids >= 0  # [B, L]
    return (same & real[:, :, None] & real[:, None, :])[:, None]  # [B, 1, L, L]


def block_causal_mask(length: int, block_size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Block-causal mask for block diffusion (Arriola et al. 2025, BD3-LM): token i attends to token j iff
    ``j // block_size <= i // block_size`` (its own block, bidirectionally, and every earlier block).

    Returns [1, 1, length, length].
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    block = torch.arange(length, device=device) // block_size  # [L]
    return (block[None, :] <= block[:, None])[None, None]  # [1, 1, L, L]


def causal_mask(q_len: int, k_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Causal mask aligned to the end: query i (absolute position ``k_len - q_len + i``) attends keys j <= that
    position. Equals the usual lower triangle when ``q_len == k_len``. Returns [1, 1, q_len, k_len]."""
    i = torch.arange(q_len, device=device)[:, None] + (k_len - q_len)  # [Lq, 1]
    j = torch.arange(k_len, device=device)[None, :]  # [1, Lk]
    return (j <= i)[None, None]  # [1, 1, Lq, Lk]


# ---------------------------------------------------------------------------------------------- helpers


def _expand_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[B, Hkv, L, D] -> [B, H, L, D]; query head h reads kv head h // (H // Hkv)."""
    n_kv = x.shape[1]
    if n_kv == n_heads:
        return x
    if n_heads % n_kv != 0:
        raise ValueError(f"{n_heads} query heads are not a multiple of {n_kv} key/value heads")
    return x.repeat_interleave(n_heads // n_kv, dim=1)  # [B, H, L, D]


def _full_mask(
    mask: torch.Tensor | None, causal: bool, q_len: int, k_len: int, device: torch.device
) -> torch.Tensor | None:
    """Combine an optional boolean mask with the causal mask; None when nothing is masked."""
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"attention mask must be a bool tensor (True = may attend), got {mask.dtype}")
    if causal:
        c = causal_mask(q_len, k_len, device)  # [1, 1, Lq, Lk]
        mask = c if mask is None else mask & c
    return mask


def _safe_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Let rows with no allowed key attend to everything (no NaN) and report which rows they were."""
    has_key = mask.any(dim=-1, keepdim=True)  # [B|1, H|1, Lq, 1]
    return mask | ~has_key, has_key


# --------------------------------------------------------------------------------------------- backends


def _eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Reference: softmax(q k^T / sqrt(D) masked) v, computed explicitly in the input dtype."""
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [B, H, Lq, Lk]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
        has_key = mask.any(dim=-1, keepdim=True)  # [B|1, H|1, Lq, 1]
        scores = scores.masked_fill(~has_key, 0.0)  # rows with no key: uniform, zeroed below
    probs = scores.softmax(dim=-1)  # [B, H, Lq, Lk]
    out = probs @ v  # [B, H, Lq, D]
    if mask is not None:
        out = out.masked_fill(~has_key, 0.0)
    return out


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """torch's fused scaled_dot_product_attention (flash / memory-efficient / math kernel chosen by torch);
    k, v may have fewer heads than q (GQA, read in place)."""
    gqa = k.shape[1] != q.shape[1]
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)  # [B, H, Lq, D]
    safe, has_key = _safe_rows(mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, enable_gqa=gqa)  # [B, H, Lq, D]
    return out.masked_fill(~has_key, 0.0)


def _xformers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """xformers memory-efficient attention (layout [B, L, H, D]) without a mask; masked calls go to SDPA, which
    takes the boolean mask broadcast instead of a dense [B, H, Lq, Lk] bias."""
    if not q.is_cuda:
        raise UserError("attention backend 'xformers' needs CUDA tensors; use backend 'sdpa' on CPU")
    if mask is not None:
        return _sdpa(q, k, v, mask)  # [B, H, Lq, D]
    import xformers.ops as xops  # noqa: PLC0415 (optional dependency, imported lazily)

    return xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    ).transpose(1, 2)  # [B, H, Lq, D]


def _sdpa_causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=k.shape[1] != q.shape[1])  # [B, H, L, D]


def _xformers_causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    import xformers.ops as xops  # noqa: PLC0415

    return xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=xops.LowerTriangularMask()
    ).transpose(1, 2)  # [B, H, L, D]


Backend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
BACKENDS: dict[str, Backend] = {"sdpa": _sdpa, "eager": _eager, "xformers": _xformers}
# Kernels with a built-in causal mask (no mask tensor materialised), used for causal attention without a mask.
_CAUSAL_KERNELS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sdpa": _sdpa_causal,
    "xformers": _xformers_causal,
}


@functools.cache
def xformers_available() -> bool:
    """True when ``xformers.ops`` imports and CUDA is available (checked once per process)."""
    if not torch.cuda.is_available():
        return False
    try:
        import xformers.ops  # noqa: F401, PLC0415
    except Exception:  # ImportError, or a broken build raising at import
        return False
    return True


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run on ``device``."""
    names = ["sdpa", "eager"]
    if torch.device(device).type == "cuda" and xformers_available():
        names.append("xformers")
    return names


def resolve_backend(backend: str | None, device: torch.device) -> str:
    """Name of the backend to use: ``backend`` if given (validated), else xformers on CUDA when importable,
    else sdpa."""
    if backend is None:
        return "xformers" if device.type == "cuda" and xformers_available() else "sdpa"
    if backend not in BACKENDS:
        raise UserError(f"unknown attention backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if backend == "xformers" and not xformers_available():
        raise UserError(
            "attention backend 'xformers' needs CUDA and the xformers package: pip install 'maskzoo-core[xformers]'"
        )
    return backend


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
    backend: str | None = None,
) -> torch.Tensor:
    """Multi-head attention ``softmax(q k^T / sqrt(D) + log mask) v``.

    Args:
        q: [B, H, Lq, D] queries.
        k, v: [B, Hkv, Lk, D] keys / values; ``H`` must be a multiple of ``Hkv`` (GQA).
        mask: bool, broadcastable to [B, H, Lq, Lk]; True = may attend. None = attend everywhere.
        causal: also forbid attending to later positions (aligned to the end when Lq < Lk).
        backend: "sdpa", "xformers", "eager", or None (auto: xformers on CUDA if importable, else sdpa).

    Returns:
        [B, H, Lq, D]; rows that may attend to nothing are zero.
    """
    name = resolve_backend(backend, q.device)
    n_heads, q_len, k_len = q.shape[1], q.shape[2], k.shape[2]
    if n_heads % k.shape[1]:
        raise ValueError(f"{n_heads} query heads are not a multiple of {k.shape[1]} key/value heads")
    if name != "sdpa":
        k = _expand_kv(k, n_heads)  # [B, H, Lk, D]
        v = _expand_kv(v, n_heads)  # [B, H, Lk, D]
    if causal and mask is None and q_len == k_len and name in _CAUSAL_KERNELS:
        return _CAUSAL_KERNELS[name](q, k, v)  # [B, H, Lq, D]
    full = _full_mask(mask, causal, q_len, k_len, q.device)  # [B|1, H|1, Lq, Lk] or None
    return BACKENDS[name](q, k, v, full)
