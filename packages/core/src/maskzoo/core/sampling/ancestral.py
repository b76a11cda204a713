"""Ancestral sampling of MDLM / MD4 over a noise schedule, reusing p(x0) while nothing changes.

MDLM (Sahoo et al. 2024, arXiv 2406.07524) and MD4 (Shi et al. 2024, arXiv 2406.04329) discretise [0, 1] into
``S`` steps ``t_i = 1 - i/S``. Going from ``t`` to ``s < t``, each still-masked token is unmasked independently with

    P(unmask) = (alpha(s) - alpha(t)) / (1 - alpha(t)),

and an unmasked token is drawn from the denoiser's p(x0_j | x_t) (tokens already decoded stay: "carry-over
unmasking"). ``alpha`` is the schedule's probability of being clean; the last step reaches ``alpha(0) = 1`` and
reveals everything left. The denoiser does not take ``t``, so when no token changed since the last model call
x_t is the same and so is p(x0 | x_t): the cached logits are reused (MDLM, Sec. 3.3: "caching"). The mask token
itself is never drawn (its logit is set to ``-inf``). The model runs
lazily, only when a row that reveals a token now has changed since the last call, so the number of calls is at
most the number of steps that reveal something, however large ``S`` is. It always runs on the whole batch: a
model closing over per-row context (image features, say) sees the rows it was built for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .caches import RegionLogits
from .counts import Span
from .draw import TokenDraw, forbid_token


def _linear_alpha(t: Tensor) -> Tensor:
    return 1.0 - t


def schedule_alphas(schedule: object | None, steps: int) -> list[float]:
    """``alpha(t_i)`` at ``t_i = 1 - i/steps``, i = 0..steps, as floats (the grid is fixed per block).

    ``schedule`` is ``None`` (linear, ``alpha(t) = 1 - t``), a name for ``maskzoo.core.schedules.get_schedule``, or
    any object with ``alpha(t: Tensor) -> Tensor``.
    """
    if isinstance(schedule, str):
        from maskzoo.core.schedules import get_schedule  # lazy: schedules is its own module

        schedule = get_schedule(schedule)
    alpha = _linear_alpha if schedule is None else schedule.alpha  # type: ignore[attr-defined]
    times = 1.0 - torch.arange(steps + 1, dtype=torch.float64) / steps  # [S+1] from 1 to 0
    values = torch.as_tensor(alpha(times), dtype=torch.float64).clamp(0.0, 1.0)  # [S+1]
    values[-1] = 1.0  # alpha(0) = 1: the last step decodes everything left
    return values.tolist()


@dataclass
class AncestralSampler:
    """MDLM/MD4 ancestral sampler; ``schedule`` as in :func:`schedule_alphas`."""

    schedule: object | None = None

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode every masked position of ``x`` [B, L] in ``[span.region_start, span.end)`` over ``steps`` steps."""
        lo, hi = span.region_start, span.end
        region = x[:, lo:hi]  # [B, R] view into x
        alphas = schedule_alphas(self.schedule, steps)
        cache: Tensor | None = None  # [B, R, V] p(x0 | x_t) logits of the last call
        stale = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)  # [B] rows changed since that call
        for i in range(steps):
            a_t, a_s = alphas[i], alphas[i + 1]
            masked = region == mask_id  # [B, R]
            p_unmask = 1.0 if a_s >= 1.0 else (a_s - a_t) / max(1.0 - a_t, 1e-12)
            u = torch.rand(masked.shape, device=x.device, generator=draw.generator)  # [B, R]
            reveal = masked & (u < p_unmask)  # [B, R]
            if not bool(reveal.any()):
                continue  # x_t unchanged: nothing to compute
            if cache is None or bool((stale & reveal.any(dim=1)).any()):  # a row revealing now has changed
                cache = forbid_token(logits_fn(x), mask_id)  # [B, R, V] the mask is never drawn
                stale.zero_()
            b, j = reveal.nonzero(as_tuple=True)  # [n], [n]
            region[b, j] = draw(cache[b, j])  # [n]
            stale |= reveal.any(dim=1)  # [B]
