"""The first-hitting sampler (Zheng et al. 2024, "Masked diffusion models are secretly time-agnostic masked models
and exploit inaccurate categorical sampling", arXiv 2409.02908, Sec. 3).

In the reverse process of a masked diffusion model each masked token becomes unmasked at its own random time; with
``n`` tokens masked at time ``t`` the next unmasking event ("first hitting") happens at

    tau = alpha^{-1}(1 - (1 - alpha(t)) u^{1/n}),   u ~ U(0, 1),

it concerns one masked position chosen uniformly at random, and its token is drawn from p(x0_j | x_t). The denoiser
of a masked model does not depend on ``t`` (time-agnostic), so the event times never change the tokens: the sampler
is "reveal one uniformly random masked position per step, drawn from the model". It simulates the continuous-time
process exactly with one model call per token instead of a discretised time grid.

The mask token itself is never drawn. Every row reveals exactly one token per step, so the rows stay in lock step and any batch size works (rows with
nothing left to reveal are left alone). Inside semi-autoregressive blocks the same holds per block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .caches import RegionLogits
from .counts import Span
from .draw import TokenDraw, forbid_token


@dataclass(frozen=True)
class FirstHittingSampler:
    """One uniformly random masked position per row and step, its token drawn from the model."""

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode every masked position of ``x`` [B, L] in ``[span.region_start, span.end)``, one per step.

        ``steps`` is not used: the number of steps is the number of masked positions (checked by ``generate``).
        """
        lo, hi = span.region_start, span.end
        region = x[:, lo:hi]  # [B, R] view into x
        rows = torch.arange(x.shape[0], device=x.device)  # [B]
        for _ in range(int((region == mask_id).sum(dim=1).max())):  # one sync per block
            logits = logits_fn(x)  # [B, R, V]
            masked = region == mask_id  # [B, R]
            score = torch.rand(masked.shape, device=x.device, generator=draw.generator)  # [B, R]
            pos = score.masked_fill(~masked, -1.0).argmax(dim=1)  # [B] a uniformly random masked position
            token = draw(forbid_token(logits[rows, pos], mask_id))  # [B] never the mask token
            keep = region[rows, pos]  # [B]
            region[rows, pos] = torch.where(masked.any(dim=1), token, keep)
