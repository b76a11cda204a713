"""Masking schedules: how fast tokens are absorbed into the mask state.

A schedule is a decreasing function ``alpha: [0, 1] -> [0, 1]`` with ``alpha(0) = 1``: ``alpha(t)`` is the
probability that a token is still clean (not yet masked) at time ``t``; ``1 - alpha(t)`` is the masking
probability. The forward process masks every maskable token independently,

    q(x_t^i | x_0^i) = alpha(t) * [x_t^i = x_0^i] + (1 - alpha(t)) * [x_t^i = MASK].

The continuous-time negative ELBO of masked (absorbing-state) diffusion
(MDLM, Sahoo et al. 2024, eq. 10; MD4, Shi et al. 2024, eq. 5) is

    NELBO(x_0) = int_0^1  w(t) * E_{x_t ~ q(.|x_0)} [ sum_{i masked in x_t} -log p_theta(x_0^i | x_t) ] dt,
    w(t) = -alpha'(t) / (1 - alpha(t))            (``Schedule.weight``).

With the substitution ``a = alpha(t)`` the integral does not depend on the schedule as long as
``alpha(0) = 1`` and ``alpha(1) = 0`` (MD4, sec. 4): the schedule only changes the variance of Monte Carlo
estimates, not the value. ``LogLinearSchedule`` stops at ``alpha(1) = eps`` like MDLM's default.

Every method takes a Python float (returns a float, computed in float64) or a tensor (returns a tensor of the
same shape and dtype).

| schedule              | alpha(t)               | w(t)                    | cite                    |
| --------------------- | ---------------------- | ----------------------- | ----------------------- |
| ``LinearSchedule``    | 1 - t                  | 1 / t                   | MD4; LLaDA (Nie 2025)   |
| ``CosineSchedule``    | 1 - sin(pi t / 2)      | (pi / 2) / tan(pi t / 2)| MD4 (= MaskGIT cosine)  |
| ``PolynomialSchedule``| 1 - t^k                | k / t                   | MD4                     |
| ``LogLinearSchedule`` | 1 - (1 - eps) t        | 1 / t                   | MDLM (SEDD's log-linear)|
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TypeVar

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

T = TypeVar("T", float, Tensor)


def _apply(fn, t):
    """Evaluate ``fn`` on a tensor; floats go through a float64 scalar tensor and come back as float."""
    if isinstance(t, Tensor):
        return fn(t)
    return float(fn(torch.tensor(float(t), dtype=torch.float64)))


class Schedule(ABC):
    """Abstract masking schedule. Subclasses implement ``_alpha``, ``_alpha_prime`` and ``_t_of_alpha`` on
    tensors; ``_weight`` may be overridden with a closed form that is stable near ``t = 0``."""

    name: str = "schedule"

    @abstractmethod
    def _alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _alpha_prime(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _t_of_alpha(self, a: Tensor) -> Tensor: ...

    def _weight(self, t: Tensor) -> Tensor:
        return -self._alpha_prime(t) / (1.0 - self._alpha(t))

    def alpha(self, t: T) -> T:
        """Probability that a token is still clean at time ``t``."""
        return _apply(self._alpha, t)

    def alpha_prime(self, t: T) -> T:
        """d alpha / dt (<= 0)."""
        return _apply(self._alpha_prime, t)

    def mask_prob(self, t: T) -> T:
        """Probability that a token is masked at time ``t``: ``1 - alpha(t)``."""
        return _apply(lambda x: 1.0 - self._alpha(x), t)

    def weight(self, t: T) -> T:
        """NELBO weight ``-alpha'(t) / (1 - alpha(t))``; +inf at ``t = 0``."""
        return _apply(self._weight, t)

    def t_of_alpha(self, a: T) -> T:
        """Inverse of ``alpha``: the time at which a token is clean with probability ``a``."""
        return _apply(self._t_of_alpha, a)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearSchedule(Schedule):
    """``alpha(t) = 1 - t``: the masking probability equals the time (LLaDA's forward process)."""

    name = "linear"

    def _alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def _alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def _weight(self, t: Tensor) -> Tensor:
        return 1.0 / t

    def _t_of_alpha(self, a: Tensor) -> Tensor:
        return 1.0 - a


class CosineSchedule(Schedule):
    """``alpha(t) = 1 - cos(pi/2 (1 - t)) = 1 - sin(pi t / 2)`` (MD4; MaskGIT's cosine mask ratio)."""

    name = "cosine"

    def _alpha(self, t: Tensor) -> Tensor:
        return 1.0 - torch.sin(0.5 * math.pi * t)

    def _alpha_prime(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def _weight(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi / torch.tan(0.5 * math.pi * t)

    def _t_of_alpha(self, a: Tensor) -> Tensor:
        return torch.arcsin((1.0 - a).clamp(0.0, 1.0)) * (2.0 / math.pi)


class PolynomialSchedule(Schedule):
    """``alpha(t) = 1 - t^k`` (MD4); ``k = 1`` is linear, larger ``k`` masks slowly at first."""

    name = "polynomial"

    def __init__(self, k: float = 2.0):
        if not k > 0:
            raise UserError(f"polynomial schedule needs exponent k > 0, got {k}")
        self.k = float(k)

    def _alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t**self.k

    def _alpha_prime(self, t: Tensor) -> Tensor:
        return -self.k * t ** (self.k - 1.0)

    def _weight(self, t: Tensor) -> Tensor:
        return self.k / t

    def _t_of_alpha(self, a: Tensor) -> Tensor:
        return (1.0 - a).clamp_min(0.0) ** (1.0 / self.k)

    def __repr__(self) -> str:
        return f"PolynomialSchedule(k={self.k:g})"


class LogLinearSchedule(Schedule):
    """MDLM's log-linear noise: total noise ``sigma(t) = -log(1 - (1 - eps) t)``, so
    ``alpha(t) = exp(-sigma(t)) = 1 - (1 - eps) t`` and ``alpha(1) = eps`` (never fully masked)."""

    name = "loglinear"

    def __init__(self, eps: float = 1e-3):
        if not 0.0 <= eps < 1.0:
            raise UserError(f"log-linear schedule needs 0 <= eps < 1, got {eps}")
        self.eps = float(eps)

    def _alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def _alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))

    def _weight(self, t: Tensor) -> Tensor:
        return 1.0 / t

    def _t_of_alpha(self, a: Tensor) -> Tensor:
        return (1.0 - a) / (1.0 - self.eps)

    def __repr__(self) -> str:
        return f"LogLinearSchedule(eps={self.eps:g})"


SCHEDULES: dict[str, type[Schedule]] = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "polynomial": PolynomialSchedule,
    "loglinear": LogLinearSchedule,
}


def get_schedule(name: str | Schedule, **kwargs) -> Schedule:
    """Schedule by name (``linear``, ``cosine``, ``polynomial`` (``k=``), ``loglinear`` (``eps=``));
    a ``Schedule`` instance is returned unchanged."""
    if isinstance(name, Schedule):
        return name
    try:
        cls = SCHEDULES[name]
    except KeyError:
        raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}") from None
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise UserError(f"bad arguments for schedule {name!r}: {err}") from None
