"""Key/value caches for the steps of one semi-autoregressive block (Fast-dLLM, Wu et al. 2025, arXiv 2505.22618).

A cache policy turns the :class:`~.model_io.Denoiser` into ``logits(x) -> [B, R, V]``, the logits of the block's
region ``[span.region_start, span.end)``, for every step of one block:

- ``None`` (no cache): every step runs the whole sequence (the output layer only on the region).
- ``"prefix"``: the first call of a block runs the whole sequence and keeps the keys/values of the positions before
  the block; each later step feeds only the block and everything after it.
- ``"dual"``: the first call keeps the keys/values of every position; each later step feeds only the block, whose
  own keys/values are recomputed, while the prefix and the suffix stay as they were at the block's first call.

Caches refresh at every block boundary. For a bidirectional model both caches are approximations (cached keys do not
see the tokens revealed since the block started); they are exact for block-causal models (BD3-LM). The reference is
Fast-dLLM's ``generate_with_prefix_cache`` / ``generate_with_dual_cache`` (NVlabs/Fast-dLLM v1, commit 24cc59e),
whose tokens these reproduce at batch 1. A cached step feeds the block from ``span.start``; masked positions before
it (infilling) are refused by ``generate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from maskzoo.core.kv_cache import KVCache

from .counts import Span
from .model_io import Denoiser

RegionLogits = Callable[[Tensor], Tensor]


@dataclass
class NoCache:
    """Every step runs the whole sequence."""

    denoiser: Denoiser
    span: Span

    def __call__(self, x: Tensor) -> Tensor:
        return self.denoiser.logits(x, 0, x.shape[1], self.span.region_start, self.span.end)  # [B, R, V]


@dataclass
class PrefixCache:
    """Keys/values before the block come from the block's first call; later steps feed ``x[:, start:]``."""

    denoiser: Denoiser
    span: Span
    kv: KVCache | None = field(default=None, init=False)

    def __call__(self, x: Tensor) -> Tensor:
        s = self.span
        if self.kv is None:
            self.kv = KVCache()
            out = self.denoiser.logits(x, 0, x.shape[1], s.region_start, s.end, self.kv)  # [B, R, V]
            self.kv.crop(s.start)
            return out
        return self.denoiser.logits(x, s.start, x.shape[1], s.start, s.end, self.kv)  # [B, R, V]


@dataclass
class DualCache:
    """Keys/values of every position come from the block's first call; later steps feed only the block."""

    denoiser: Denoiser
    span: Span
    kv: KVCache | None = field(default=None, init=False)

    def __call__(self, x: Tensor) -> Tensor:
        s = self.span
        if self.kv is None:
            self.kv = KVCache()
            return self.denoiser.logits(x, 0, x.shape[1], s.region_start, s.end, self.kv)  # [B, R, V]
        return self.denoiser.logits(x, s.start, s.end, s.start, s.end, self.kv)  # [B, R, V]


CACHES: dict[str | None, Callable[[Denoiser, Span], RegionLogits]] = {
    None: NoCache,
    "prefix": PrefixCache,
    "dual": DualCache,
}
