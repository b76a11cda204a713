"""Key/value cache of a :class:`~maskzoo.core.transformer.DiffusionTransformer`, for fast decoding.

A bidirectional mask predictor recomputes every position at every step; most keys and values barely change between
steps, so they can be kept (Fast-dLLM, Wu et al. 2025, arXiv 2505.22618; dKV-Cache, Ma et al. 2025) — exactly for
block diffusion (BD3-LM, Arriola et al. 2025), where finished blocks never attend to later ones, and approximately
for LLaDA-style models.

The cache holds, per layer, keys and values ``[B, Hkv, Lc, hd]`` of the key positions ``0 .. Lc-1``. A forward call
with ``kv_cache=cache, cache_position=s`` on ``n`` input positions computes their keys/values, **writes** them at
positions ``[s, s + n)`` (replacing what was there, growing the cache when ``s + n > Lc``) and lets the queries attend
to the whole cache. So:

- full forward that fills an empty cache: ``s = 0``, the whole sequence;
- prefix cache (Fast-dLLM): :meth:`crop` to the block start ``b``, then feed ``x[:, b:]`` at ``s = b`` each step;
- dual cache (Fast-dLLM): keep all positions, feed only the block ``x[:, b:e]`` at ``s = b``;
- block diffusion: feed each finished block once at its position, then the next block.

Keys are stored after RoPE. Fast-dLLM stores them before RoPE and rotates every cached key again at each call; the
rotation of a key depends only on its own position and is computed by the same float32 elementwise operations, so
both give the same numbers (tested: cached and uncached logits agree where the algorithm is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

__all__ = ["KVCache"]


@dataclass
class KVCache:
    """Per-layer keys and values ``[B, Hkv, Lc, hd]`` (after RoPE); empty until the first forward fills it."""

    keys: list[Tensor | None] = field(default_factory=list)
    values: list[Tensor | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of cached key positions ``Lc`` (0 when empty)."""
        first = self.keys[0] if self.keys else None
        return 0 if first is None else first.shape[2]

    def crop(self, length: int) -> KVCache:
        """Keep the first ``length`` positions (views, no copy); returns ``self``."""
        if length > self.length:
            raise ValueError(f"cannot crop a cache of {self.length} positions to {length}")
        self.keys = [None if k is None else k[:, :, :length] for k in self.keys]
        self.values = [None if v is None else v[:, :, :length] for v in self.values]
        return self

    def write(self, layer: int, start: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k``, ``v`` [B, Hkv, n, hd] at positions ``[start, start + n)`` of ``layer``; return all keys/values.

        Positions inside the cache are overwritten in place; positions beyond its end extend it (one copy).
        """
        while len(self.keys) <= layer:
            self.keys.append(None)
            self.values.append(None)
        old_k, old_v = self.keys[layer], self.values[layer]
        length = 0 if old_k is None else old_k.shape[2]
        end = start + k.shape[2]
        if start > length:
            raise UserError(f"cache write at position {start} leaves a gap after the {length} cached positions")
        if old_k is None or old_v is None:
            new_k, new_v = k, v  # [B, Hkv, n, hd]
        elif old_k.shape[0] != k.shape[0]:
            raise UserError(f"the cache holds {old_k.shape[0]} rows but the input has {k.shape[0]}")
        elif end <= length:
            old_k[:, :, start:end] = k  # in place: [B, Hkv, Lc, hd]
            old_v[:, :, start:end] = v
            new_k, new_v = old_k, old_v
        else:
            new_k = torch.cat([old_k[:, :, :start], k], dim=2)  # [B, Hkv, end, hd]
            new_v = torch.cat([old_v[:, :, :start], v], dim=2)
        self.keys[layer], self.values[layer] = new_k, new_v
        return new_k, new_v
