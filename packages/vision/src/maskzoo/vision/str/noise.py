"""Training noise of MDiff4STR (Du et al. 2025, arXiv 2512.01422, sec. 3.2): six masking strategies and the
token-replacement noise.

A label of ``n`` characters occupies ``m = n + 1`` positions (characters and EOS); positions after EOS are PAD
targets, always fed as MASK and never scored. Each strategy maps the label sizes ``m`` to a mask ``[B, L]``
over the first ``m`` positions and the masking probability ``p`` used to weight the loss:

| strategy        | masked positions                                  | p                 | mimics at inference    |
| --------------- | ------------------------------------------------- | ----------------- | ---------------------- |
| full            | all ``m``                                         | 1                 | one-step parallel      |
| left_to_right   | a suffix ``[j, m)``, ``j ~ U{0..m-1}``            | (m - j) / m       | autoregressive         |
| right_to_left   | a prefix ``[0, j)``, ``j ~ U{1..m}``              | j / m             | right-to-left decoding |
| block           | ``b ~ U{2..6}`` contiguous positions (<= m)       | b / m             | semi-autoregressive    |
| cloze           | exactly one position                              | 1 / m             | cloze refinement       |
| random          | each position with prob ``p ~ U(eps, 1)``, >= 1   | p                 | low-confidence steps   |

:class:`NoiseMix` draws one strategy per row with configurable weights. Replacement noise
(:func:`replace_with_predictions`) builds a second input in which the masked positions hold the model's own
predictions, so wrong predictions become non-mask noise that the model learns to correct.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

Strategy = Callable[[Tensor, int, torch.Generator | None], tuple[Tensor, Tensor]]


def _positions(sizes: Tensor, seq_len: int) -> tuple[Tensor, Tensor]:
    pos = torch.arange(seq_len, device=sizes.device)[None, :]  # [1, L]
    return pos, pos < sizes[:, None]  # [1, L], valid [B, L]


def _randint(low: Tensor, high: Tensor, generator: torch.Generator | None) -> Tensor:
    """Per-row integers uniform in ``[low, high]`` (inclusive), ``[B]``."""
    u = torch.rand(low.shape, generator=generator, device=low.device)  # [B]
    return low + (u * (high - low + 1).float()).long().clamp(max=(high - low))


def full_mask(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Every label position masked; ``p = 1``."""
    _, valid = _positions(sizes, seq_len)
    return valid, torch.ones(sizes.shape, device=sizes.device)


def left_to_right(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A clean prefix ``[0, j)`` and a masked suffix ``[j, m)`` (what left-to-right decoding sees)."""
    pos, valid = _positions(sizes, seq_len)
    j = _randint(torch.zeros_like(sizes), sizes - 1, generator)  # [B] in [0, m-1]
    mask = valid & (pos >= j[:, None])
    return mask, (sizes - j).float() / sizes.float()


def right_to_left(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A masked prefix ``[0, j)`` and a clean suffix ``[j, m)``."""
    pos, valid = _positions(sizes, seq_len)
    j = _randint(torch.ones_like(sizes), sizes, generator)  # [B] in [1, m]
    mask = valid & (pos < j[:, None])
    return mask, j.float() / sizes.float()


def block(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None,
          min_len: int = 2, max_len: int = 6) -> tuple[Tensor, Tensor]:
    """One contiguous block of ``b ~ U{min_len..max_len}`` positions (at most ``m``) masked."""
    pos, valid = _positions(sizes, seq_len)
    b = _randint(torch.full_like(sizes, min_len), torch.full_like(sizes, max_len), generator)  # [B]
    b = torch.minimum(b, sizes)
    start = _randint(torch.zeros_like(sizes), sizes - b, generator)  # [B] in [0, m-b]
    mask = valid & (pos >= start[:, None]) & (pos < (start + b)[:, None])
    return mask, b.float() / sizes.float()


def cloze(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Exactly one position masked (what cloze refinement asks)."""
    pos, _ = _positions(sizes, seq_len)
    j = _randint(torch.zeros_like(sizes), sizes - 1, generator)  # [B]
    return pos == j[:, None], 1.0 / sizes.float()


def random_mask(sizes: Tensor, seq_len: int, generator: torch.Generator | None = None,
                eps: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Each position masked independently with ``p ~ U(eps, 1)`` (the vanilla MDM forward process); a row
    that drew no mask gets one random position masked."""
    pos, valid = _positions(sizes, seq_len)
    p = eps + (1 - eps) * torch.rand(sizes.shape, generator=generator, device=sizes.device)  # [B]
    u = torch.rand((sizes.shape[0], seq_len), generator=generator, device=sizes.device)  # [B, L]
    mask = valid & (u < p[:, None])
    one, _ = cloze(sizes, seq_len, generator)
    mask = torch.where(mask.any(-1, keepdim=True), mask, one)
    return mask, p


STRATEGIES: dict[str, Strategy] = {
    "full": full_mask,
    "left_to_right": left_to_right,
    "right_to_left": right_to_left,
    "block": block,
    "cloze": cloze,
    "random": random_mask,
}


@dataclass
class NoiseMix:
    """Weights of the six strategies (normalised at use) and of the replacement noise.

    ``replace_weight`` > 0 turns on the second (replacement) pass; its loss is multiplied by it.
    """

    full: float = 1.0
    left_to_right: float = 1.0
    right_to_left: float = 1.0
    block: float = 1.0
    cloze: float = 1.0
    random: float = 1.0
    replace_weight: float = 1.0

    def _raw(self) -> list[float]:
        return [float(getattr(self, k)) for k in STRATEGIES]

    def weights(self) -> Tensor:
        """The six weights scaled by their maximum (so any finite weights, however large, stay finite) [6]."""
        w = self._raw()
        top = max(w)
        return torch.tensor([v / top for v in w] if top > 0 else w, dtype=torch.float64)  # [6]

    def validate(self) -> None:
        w = self._raw()
        if not all(math.isfinite(v) and v >= 0 for v in w) or max(w) <= 0:
            raise UserError("noise: strategy weights must be finite and >= 0 with a positive sum")
        if not math.isfinite(self.replace_weight) or self.replace_weight < 0:
            raise UserError("noise: replace_weight must be finite and >= 0")

    def sample(self, sizes: Tensor, seq_len: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Draw a strategy per row; returns ``(is_masked [B, L], p [B], strategy index [B])``."""
        w = self.weights()
        choice = torch.multinomial(w / w.sum(), sizes.shape[0], replacement=True, generator=generator)  # [B]
        choice = choice.to(sizes.device)
        mask = torch.zeros((sizes.shape[0], seq_len), dtype=torch.bool, device=sizes.device)  # [B, L]
        p = torch.ones(sizes.shape, device=sizes.device)  # [B]
        for k, fn in enumerate(STRATEGIES.values()):
            rows = choice == k
            if rows.any():
                m_k, p_k = fn(sizes[rows], seq_len, generator)
                mask[rows], p[rows] = m_k, p_k
        return mask, p, choice


def noisy_input(targets: Tensor, is_masked: Tensor, mask_id: int, pad_id: int) -> Tensor:
    """Decoder input ``x_t`` ``[B, L]``: MASK where masked and after EOS (PAD targets), the clean id elsewhere."""
    hidden = is_masked | (targets == pad_id)
    return torch.where(hidden, torch.full_like(targets, mask_id), targets)


def replace_with_predictions(targets: Tensor, is_masked: Tensor, predictions: Tensor, mask_id: int,
                             pad_id: int) -> Tensor:
    """Replacement-noise input ``[B, L]``: the model's own predictions (argmax of the first pass) at the
    masked positions, the clean ids elsewhere, MASK after EOS. Where a prediction is wrong the input holds a
    wrong character (non-mask noise); the second pass is scored at every label position."""
    x = torch.where(is_masked, predictions, targets)  # [B, L]
    return torch.where(targets == pad_id, torch.full_like(targets, mask_id), x)
