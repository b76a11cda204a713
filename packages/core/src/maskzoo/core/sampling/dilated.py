"""The dilated unmasking scheduler (DUS; Luxembourg, Permuter & Nachmani 2025, "Plan for Speed: Dilated
Scheduling for Masked Diffusion Language Models", arXiv 2506.19037).

Tokens revealed in the same step are drawn independently from their marginals, so the error of a parallel step
grows with the dependence between them; neighbouring tokens depend most. DUS fixes the order in advance: a block of
``b`` positions is revealed in ``K = ceil(log2 b)`` steps, coarse to fine, so that the tokens of one step are never
adjacent and the first ones are far apart. With ``P = 2^K``, step ``s`` (0-based) reveals the block positions ``i``
with ``i mod (P / 2^(s+1)) == 0`` not revealed before, e.g. for ``b = 8``: {0, 4}, {2, 6}, {1, 3, 5, 7}.
It needs no planner and no confidence: ``K`` model calls per block whatever ``steps`` says (``steps`` is not used).
Masked positions before the block (infilling) are revealed with the block's first group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .caches import RegionLogits
from .counts import Span
from .draw import TokenDraw


def dilation_groups(block: int) -> list[list[int]]:
    """The positions ``0..block-1`` in DUS's ``ceil(log2 block)`` groups (one group for a block of 1)."""
    k = max(1, math.ceil(math.log2(block))) if block > 1 else 1
    period = 2**k
    seen: set[int] = set()
    groups = []
    for s in range(k):
        stride = max(1, period >> (s + 1))
        group = [i for i in range(block) if i % stride == 0 and i not in seen]
        seen.update(group)
        if group:
            groups.append(group)
    return groups


@dataclass(frozen=True)
class DilatedSampler:
    """DUS: a fixed coarse-to-fine order of non-adjacent groups, ``ceil(log2 b)`` model calls per block."""

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode the masked positions of ``x`` [B, L] in ``[span.region_start, span.end)`` group by group."""
        lo = span.region_start
        region = x[:, lo : span.end]  # [B, R] view into x
        for g, group in enumerate(dilation_groups(span.end - span.start)):
            cols = torch.tensor([span.start - lo + i for i in group], device=x.device)  # [G]
            pick = torch.zeros(region.shape[1], dtype=torch.bool, device=x.device)  # [R]
            pick[cols] = True
            if g == 0:
                pick[: span.start - lo] = True  # infilling masks before the block go first
            reveal = pick[None, :] & (region == mask_id)  # [B, R]
            if not bool(reveal.any()):
                continue
            x0 = draw(logits_fn(x))  # [B, R]
            region.copy_(torch.where(reveal, x0, region))
