"""ReMDM: remasking already decoded tokens during ancestral sampling (Wang, Schiff, Sahoo & Kuleshov 2025,
"Remasking Discrete Diffusion Models with Inference-Time Scaling", arXiv 2503.00307).

From ``t`` to ``s < t`` with ``alpha`` the probability of being clean, ReMDM's reverse step keeps the marginals of
the masked forward process for any ``sigma_t`` in ``[0, sigma_max]``, ``sigma_max = min(1, (1 - alpha_s) / alpha_t)``:

- a decoded token is masked again with probability ``sigma_t``;
- a masked token is revealed with probability ``(alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t)``, its token drawn
  from ``p(x0 | x_t)``.

``sigma_t = 0`` is MDLM's ancestral sampler. The paper's schedules: ``"cap"``: ``sigma_t = min(eta, sigma_max)``;
``"rescale"``: ``sigma_t = eta * sigma_max``. The last step has ``alpha_s = 1``, so ``sigma_max = 0`` and everything
left is revealed. Only positions that were masked when the block started can be remasked (never the prompt). The
mask token itself is never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

from .ancestral import schedule_alphas
from .caches import RegionLogits
from .counts import Span
from .draw import TokenDraw, forbid_token


@dataclass(frozen=True)
class ReMDMSampler:
    """ReMDM over ``steps`` steps of ``schedule`` (as in :func:`.ancestral.schedule_alphas`)."""

    schedule: object | None = None
    eta: float = 0.04
    strategy: str = "cap"

    def __post_init__(self) -> None:
        if self.strategy not in ("cap", "rescale"):
            raise UserError(f"ReMDM strategy must be 'cap' or 'rescale', got {self.strategy!r}")
        if not 0.0 <= self.eta <= 1.0:
            raise UserError(f"ReMDM eta must be in [0, 1], got {self.eta}")

    def sigma(self, a_t: float, a_s: float) -> float:
        """Remasking probability of a decoded token from ``alpha_t`` to ``alpha_s``."""
        sigma_max = 1.0 if a_t <= 0.0 else min(1.0, (1.0 - a_s) / a_t)
        return min(self.eta, sigma_max) if self.strategy == "cap" else self.eta * sigma_max

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None:
        """Decode the masked positions of ``x`` [B, L] in ``[span.region_start, span.end)`` over ``steps`` steps."""
        region = x[:, span.region_start : span.end]  # [B, R] view into x
        generated = region == mask_id  # [B, R] positions this block may remask
        alphas = schedule_alphas(self.schedule, steps)
        for i in range(steps):
            a_t, a_s = alphas[i], alphas[i + 1]
            sigma = self.sigma(a_t, a_s)
            masked = region == mask_id  # [B, R]
            p_unmask = 1.0 if a_s >= 1.0 else max(0.0, a_s - (1.0 - sigma) * a_t) / max(1.0 - a_t, 1e-12)
            u = torch.rand(masked.shape, device=x.device, generator=draw.generator)  # [B, R]
            reveal = masked & (u < p_unmask)  # [B, R]
            remask = generated & ~masked & (u < sigma)  # [B, R]
            if bool(reveal.any()):  # the model sees x_t, before this step's remasking
                x0 = draw(forbid_token(logits_fn(x), mask_id))  # [B, R]
                region.copy_(torch.where(reveal, x0, region))
            region.masked_fill_(remask, mask_id)
