"""LLaDA's reverse process with remasking: draw every masked token, keep the ``k_i`` most confident.

At step ``i`` of a block (Nie et al. 2025, "Large Language Diffusion Models", Alg. 4-5), the denoiser predicts every
masked position; a token ``x0_j`` is drawn at each (greedy or float64 Gumbel, see :mod:`.draw`) and scored by a
confidence rule (:mod:`.confidence`); the ``k_i`` highest-scoring masked positions with index < block end are set
to their drawn tokens and the rest stay masked ("remasked"). ``k_i`` follows LLaDA's split (:mod:`.counts`).

With ``temperature == 0`` and the probability rule this reproduces the reference ``generate()`` token for token:
same counts, same logits-dtype softmax, same ``torch.topk`` tie-breaking (one batched call per distinct count runs
the same per-row selection as the reference's loop over rows). The work is done on the block's columns only and
needs no host synchronisation inside the step loop (the counts are known on the host once per block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .caches import RegionLogits
from .confidence import ConfidenceRule, topk_per_row
from .counts import Span, transfer_counts
from .draw import TokenDraw


@dataclass(frozen=True)
class ConfidenceSampler:
    """Semi-autoregressive remasking sampler for one confidence rule."""

    rule: ConfidenceRule

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode every masked position of ``x`` [B, L] in ``[span.region_start, span.end)`` in ``steps`` steps."""
        lo, hi = span.region_start, span.end
        batch, length = x.shape
        region = x[:, lo:hi]  # [B, R] view into x
        counted = x[:, span.count_start : hi] == mask_id  # [B, C]
        counts = transfer_counts(counted.sum(dim=1), steps).tolist()  # [B][S], one sync per block
        confidence: Tensor | None = None  # [B, L]; -inf outside the region for the whole block
        for i in range(steps):
            k = [row[i] for row in counts]
            if not any(k):
                continue  # nothing to reveal: the forward call would change nothing
            logits = logits_fn(x).contiguous()  # [B, R, V]; softmax on a strided slice is slow
            x0 = draw(logits)  # [B, R]
            score = self.rule(logits, x0, draw.generator)  # [B, R]
            masked = region == mask_id  # [B, R]
            if confidence is None:
                confidence = torch.full((batch, length), float("-inf"), dtype=score.dtype, device=x.device)
            confidence[:, lo:hi] = score.masked_fill(~masked, float("-inf"))
            for rows, idx in topk_per_row(confidence, k):  # idx [G, k] all inside [lo, hi)
                local = idx - lo  # [G, k]
                if rows is None:
                    region.scatter_(1, local, x0.gather(1, local))
                else:
                    region[rows] = region[rows].scatter(1, local, x0[rows].gather(1, local))
