"""LLaDA-V's stopping criteria inside a block: once a stop token is revealed, only positions before it remain.

LLaDA-V's ``generate_with_embeds(..., stopping_criteria=["<|eot_id|>"])`` (ML-GSAI/LLaDA-V, ``modeling_llada.py``)
changes LLaDA's semi-autoregressive loop (Nie et al. 2025, Alg. 4-5) in three ways once a step has revealed a stop
token at generated position ``s`` (the earliest one, re-checked after every step):

1. the remaining steps of the block rank only masked positions before ``s`` (confidence ``-inf`` from ``s`` on,
   instead of from the block end), with the block's unchanged per-step counts ``k_i``;
2. the block ends as soon as no mask is left before ``s``, and every later block is skipped;
3. the answer is cut at ``s``.

:class:`StopConfidenceSampler` is :class:`~.remasking.ConfidenceSampler` with these rules, kept per row (the
reference is batch 1; each row here stops on its own). The answer is returned at full length with every position
from ``s`` on set to the stop token, so decoding up to the first stop gives the reference's answer. Exactness note:
when ``k_i`` exceeds the masks left before ``s``, the reference's ``torch.topk`` also picks among ``-inf`` entries;
picks that land on masked positions of the block after ``s`` are revealed here as there; picks outside the block's
region (prompt positions, where the reference changes nothing, or later blocks) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .caches import RegionLogits
from .confidence import ConfidenceRule, topk_per_row
from .counts import Span, transfer_counts
from .draw import TokenDraw


@dataclass
class StopConfidenceSampler:
    """Confidence remasking that stops each row at its first revealed stop token (LLaDA-V semantics)."""

    rule: ConfidenceRule
    stop_ids: Tensor  # [S] int64
    gen_start: int  # first generated position (the prompt length)
    stop_at: Tensor | None = field(default=None, init=False)  # [B] first stop position, or L where none yet

    def _find_stops(self, x: Tensor, hi: int) -> None:
        """Update ``stop_at`` [B] with the earliest stop token in ``x[:, gen_start:hi]``."""
        if hi <= self.gen_start:
            return
        is_stop = torch.isin(x[:, self.gen_start:hi], self.stop_ids.to(x.device))  # [B, hi - gen_start]
        pos = torch.arange(self.gen_start, hi, device=x.device).expand_as(is_stop)  # [B, hi - gen_start]
        self.stop_at = torch.minimum(self.stop_at, torch.where(is_stop, pos, x.shape[1]).amin(dim=1))  # [B]

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode the masked positions of ``x`` [B, L] in ``[span.region_start, span.end)`` as LLaDA-V does."""
        lo, hi = span.region_start, span.end
        batch, length = x.shape
        if self.stop_at is None:
            self.stop_at = torch.full((batch,), length, dtype=torch.long, device=x.device)  # [B]
        region = x[:, lo:hi]  # [B, R] view into x
        counts = transfer_counts((x[:, span.count_start:hi] == mask_id).sum(dim=1), steps).tolist()  # [B][S]
        stopped_before = self.stop_at <= span.start  # [B] rows that skip this block
        positions = torch.arange(length, device=x.device)  # [L]
        for i in range(steps):
            masked_all = x == mask_id  # [B, L]
            found = self.stop_at < length  # [B]
            before_stop = positions[None, :] < self.stop_at[:, None]  # [B, L]
            pre_stop_left = (masked_all & before_stop)[:, self.gen_start:].any(dim=1)  # [B]
            block_left = masked_all[:, lo:hi].any(dim=1)  # [B]
            active = ~stopped_before & block_left & (~found | pre_stop_left)  # [B]
            k = [row[i] if a else 0 for row, a in zip(counts, active.tolist(), strict=True)]
            if not any(k):
                break
            logits = logits_fn(x).contiguous()  # [B, R, V]
            x0 = draw(logits)  # [B, R]
            score = self.rule(logits, x0, draw.generator)  # [B, R]
            confidence = torch.full((batch, length), float("-inf"), dtype=score.dtype, device=x.device)  # [B, L]
            confidence[:, lo:hi] = score.masked_fill(region != mask_id, float("-inf"))
            confidence = confidence.masked_fill(found[:, None] & ~before_stop, float("-inf"))
            for rows, idx in topk_per_row(confidence, k):  # idx [G, k]; may include -inf picks (see module doc)
                picked = torch.zeros((batch if rows is None else len(rows), length), dtype=torch.bool,
                                     device=x.device).scatter_(1, idx, True)[:, lo:hi]  # [G, R]
                rx = region if rows is None else region[rows]  # [G, R]
                take = picked & (rx == mask_id)  # only masked positions change, as in the reference
                new = torch.where(take, x0 if rows is None else x0[rows], rx)  # [G, R]
                if rows is None:
                    region.copy_(new)
                else:
                    region[rows] = new
            self._find_stops(x, hi)
        self._fill_after_stops(x)

    def _fill_after_stops(self, x: Tensor) -> None:
        """Set every position from each row's stop on to that stop token (the answer is cut there)."""
        length = x.shape[1]
        for b, s in enumerate(self.stop_at.tolist()):
            if s < length:
                x[b, s:] = x[b, s].clone()
