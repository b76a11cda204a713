"""Adaptive parallel decoding: reveal as many tokens per step as the model is confident about.

Each step of a block scores every masked candidate of the region with its confidence ``c`` (the probability of its
drawn token, computed in float64 as Fast-dLLM does; or the top-2 margin), sorts them, ``c_(1) >= c_(2) >= ...``,
and reveals the ``k`` most confident, where

- threshold rule (Fast-dLLM v1, Wu et al. 2025, arXiv 2505.22618, Sec. 3.3): ``k = #{j : c_(j) >= tau}``;
- factor rule (Fast-dLLM's "dynamic" rule, ``get_transfer_index_dynamic``): the largest ``k`` with
  ``c_(j) >= 1 - f / (j + 1)`` for every ``j <= k`` (the bound grows with ``j``, so it is the leading run).

Always at least one token (``k >= 1``) so every step makes progress, and at least ``ceil(m / s)`` when ``m`` masks
are left for ``s`` remaining steps, so that ``steps`` is an upper bound per block (with ``steps >= block_length``
this never binds, and the rule is exactly Fast-dLLM's). A row whose region has no mask left reveals nothing; the
block ends when no row has a mask. Each row has its own counts, so any batch size works.

(Fast-dLLM's dynamic rule also reveals every candidate when only the last one fails its bound; here the rule is
applied as stated.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .caches import RegionLogits
from .confidence import ConfidenceRule
from .counts import Span
from .draw import TokenDraw


class CountRule(Protocol):
    def count(self, ranked: Tensor) -> Tensor:
        """How many to reveal per row from the candidates' confidences sorted descending [B, R] (-inf = none)."""
        ...


@dataclass(frozen=True)
class Threshold:
    """Reveal every candidate with confidence >= ``value``."""

    value: float

    def count(self, ranked: Tensor) -> Tensor:
        return (ranked >= self.value).sum(dim=1)  # [B]


@dataclass(frozen=True)
class Factor:
    """Reveal the leading run of candidates whose j-th confidence is >= 1 - ``value`` / (j + 1)."""

    value: float

    def count(self, ranked: Tensor) -> Tensor:
        j = torch.arange(1, ranked.shape[1] + 1, device=ranked.device, dtype=torch.float64)  # [R]
        ok = ranked.to(torch.float64) >= 1.0 - self.value / (j + 1.0)  # [B, R]
        return ok.to(torch.int64).cumprod(dim=1).sum(dim=1)  # [B] length of the leading run


def float64_probability(logits: Tensor, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``p(x0_i)`` under a float64 softmax (Fast-dLLM's confidence); [B, R, V], [B, R] -> [B, R]."""
    p = torch.softmax(logits.to(torch.float64), dim=-1)  # [B, R, V]
    return torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)  # [B, R]


@dataclass(frozen=True)
class ParallelSampler:
    """Confidence-scored parallel decoding with an adaptive per-row count (``rule``)."""

    score: ConfidenceRule
    rule: CountRule

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode the masked positions of ``x`` [B, L] in ``[span.region_start, span.end)`` in at most ``steps``."""
        region = x[:, span.region_start : span.end]  # [B, R] view into x
        for i in range(steps):
            masked = region == mask_id  # [B, R]
            left = masked.sum(dim=1)  # [B]
            if not bool(left.any()):
                break  # one sync per step: the block ends when every row is done
            logits = logits_fn(x)  # [B, R, V]
            x0 = draw(logits)  # [B, R]
            score = self.score(logits, x0, draw.generator).masked_fill(~masked, float("-inf"))  # [B, R]
            ranked, order = torch.sort(score, dim=1, descending=True, stable=True)  # [B, R] each
            floor = (left + (steps - i) - 1) // (steps - i)  # [B] ceil(m / s): finish within ``steps``
            k = torch.minimum(torch.maximum(self.rule.count(ranked), floor.clamp(min=1)), left)  # [B]
            take = torch.arange(region.shape[1], device=x.device)[None, :] < k[:, None]  # [B, R] in ranked order
            reveal = torch.zeros_like(take).scatter(1, order, take)  # [B, R] in position order
            region.copy_(torch.where(reveal, x0, region))
