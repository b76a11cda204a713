"""The forward (masking) process q(x_t | x_0) and the sampling of diffusion times.

Forward process (absorbing state; MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024; LLaDA, Nie et al. 2025):
each maskable position ``i`` is replaced by the mask token independently with probability ``p``,

    x_t^i = MASK  with probability p = 1 - alpha(t),     x_t^i = x_0^i  otherwise.

Positions with ``maskable = False`` (prompt, special and padding tokens) are never masked: they are what the
model is conditioned on.

Time samplers return ``t`` in ``[0, 1)`` of shape ``[B]``:

- ``uniform_times``: i.i.d. ``U(0, 1)``.
- ``antithetic_times``: MDLM's low-discrepancy sampler ``t_i = (u + i / B) mod 1`` with one ``u ~ U(0, 1)``:
  every ``t_i`` is marginally uniform (the estimate stays unbiased) and each interval ``[k/B, (k+1)/B)`` holds
  exactly one time, which lowers the variance of a batch-averaged loss.

``floor_times(t, eps) = (1 - eps) t + eps`` keeps times away from 0, where the NELBO weight ``1/t`` explodes;
``llada_mask_prob`` is the same map read as LLaDA's masking probability ``p_mask`` (GUIDELINES.md,
``forward_process``), which equals the floored time under the linear schedule.
"""

from __future__ import annotations

import operator
from typing import Protocol

import torch
from torch import Tensor

from maskzoo.core.errors import UserError


class TimeSampler(Protocol):
    def __call__(
        self,
        batch: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor: ...


def uniform_times(
    batch: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``batch`` i.i.d. times ``t ~ U(0, 1)``; returns ``[batch]``."""
    return torch.rand(batch, generator=generator, device=device, dtype=dtype)  # [B]


def antithetic_times(
    batch: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Stratified (low-discrepancy) times ``t_i = (u + i / batch) mod 1``, ``u ~ U(0, 1)`` (MDLM sec. 3.5).

    Each ``t_i`` is marginally ``U(0, 1)``; together they hit every stratum ``[k/B, (k+1)/B)`` exactly once.
    """
    u = torch.rand(1, generator=generator, device=device, dtype=torch.float64)  # [1]
    offsets = torch.arange(batch, device=u.device, dtype=torch.float64) / batch  # [B]
    return torch.remainder(u + offsets, 1.0).to(dtype)  # [B]


TIME_SAMPLERS: dict[str, TimeSampler] = {"uniform": uniform_times, "antithetic": antithetic_times}


def get_time_sampler(name: str | TimeSampler) -> TimeSampler:
    """Time sampler by name (``uniform`` or ``antithetic``); a callable is returned unchanged."""
    if callable(name):
        return name
    try:
        return TIME_SAMPLERS[name]
    except KeyError:
        raise UserError(f"unknown time sampler {name!r}; choose one of {', '.join(TIME_SAMPLERS)}") from None


def floor_times(t: Tensor, eps: float) -> Tensor:
    """Affine floor ``(1 - eps) t + eps`` mapping ``[0, 1]`` onto ``[eps, 1]`` (MDLM's ``sampling_eps``)."""
    return (1.0 - eps) * t + eps


def llada_mask_prob(t: Tensor, eps: float = 1e-3) -> Tensor:
    """LLaDA's masking probability ``p_mask = (1 - eps) t + eps`` (Nie et al. 2025, GUIDELINES.md)."""
    return floor_times(t, eps)


def _check_mask_id(mask_id: int) -> int:
    try:
        value = operator.index(mask_id)
    except TypeError:
        value = -1
    if isinstance(mask_id, bool) or value < 0:
        raise UserError(f"mask id must be a non-negative integer, got {mask_id!r}")
    return value


def mask_tokens(
    x0: Tensor,
    mask_prob: Tensor | float,
    mask_id: int,
    maskable: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample ``x_t ~ q(x_t | x_0)``: mask each maskable token independently with probability ``mask_prob``.

    Args:
        x0: clean tokens ``[B, L]`` (long).
        mask_prob: per-row probability ``[B]``, per-token ``[B, L]``, or a float.
        mask_id: the id written at masked positions (owned by the tokenizer / model).
        maskable: ``[B, L]`` bool; ``False`` positions are never masked. ``None`` means all maskable.
        generator: torch RNG on ``x0.device`` (``None`` uses the global RNG).

    Returns:
        ``(xt [B, L] long, is_masked [B, L] bool)``.
    """
    mask_id = _check_mask_id(mask_id)
    p = torch.as_tensor(mask_prob, device=x0.device)
    if p.dim() == 1:
        p = p[:, None]  # [B, 1]
    u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float32)  # [B, L]
    is_masked = u < p  # [B, L]
    if maskable is not None:
        is_masked = is_masked & maskable.to(torch.bool)
    xt = torch.where(is_masked, torch.full_like(x0, mask_id), x0)  # [B, L]
    return xt, is_masked


def mask_random_subset(
    x0: Tensor,
    num_masked: Tensor,
    mask_id: int,
    maskable: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Mask exactly ``num_masked[b]`` maskable positions of row ``b``, chosen uniformly without replacement.

    This is the forward process conditioned on the number of masked tokens, used by LLaDA's likelihood
    estimator (Nie et al. 2025, eq. 6) and by ``maskzoo.core.likelihood``. ``num_masked`` ``[B]`` must not
    exceed the number of maskable positions of its row.

    Returns:
        ``(xt [B, L] long, is_masked [B, L] bool)``.
    """
    mask_id = _check_mask_id(mask_id)
    scores = torch.rand(x0.shape, generator=generator, device=x0.device)  # [B, L]
    if maskable is not None:
        scores = scores.masked_fill(~maskable.to(torch.bool), 2.0)  # never among the lowest
    ranks = scores.argsort(dim=-1).argsort(dim=-1)  # [B, L] rank of each position
    is_masked = ranks < num_masked.to(x0.device)[:, None]  # [B, L]
    if maskable is not None:
        is_masked = is_masked & maskable.to(torch.bool)
    xt = torch.where(is_masked, torch.full_like(x0, mask_id), x0)  # [B, L]
    return xt, is_masked
