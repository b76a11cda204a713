"""Exponential moving average (EMA) of model parameters (Polyak & Juditsky 1992).

After every optimizer update::

    shadow <- decay * shadow + (1 - decay) * param

The shadow weights are kept in fp32 on the parameters' device, saved in every checkpoint, and swapped into the
model for evaluation and export (:meth:`EMA.swapped`). Buffers (e.g. running statistics) are not averaged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """EMA of ``model``'s trainable parameters, keyed by parameter name."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = model
        self._named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.shadow: dict[str, torch.Tensor] = {n: p.detach().clone().float() for n, p in self._named}

    def _params(self) -> Iterator[tuple[str, nn.Parameter]]:
        return iter(self._named)

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadow weights one step towards the current parameters."""
        shadows = [self.shadow[n] for n, _ in self._named]
        current = [p.detach().float() for _, p in self._named]
        torch._foreach_lerp_(shadows, current, 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[nn.Module]:
        """Temporarily load the EMA weights into the model (restored on exit, bit for bit)."""
        backup = {}
        with torch.no_grad():
            for name, p in self._params():
                backup[name] = p.detach().clone()
                p.copy_(self.shadow[name].to(p.dtype))
        try:
            yield self.model
        finally:
            with torch.no_grad():
                for name, p in self._params():
                    p.copy_(backup[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Shadow weights, name -> fp32 tensor (saved as safetensors by the checkpointer)."""
        return {n: t.detach().clone().contiguous() for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        unexpected = set(state) - set(self.shadow)
        if missing or unexpected:
            raise KeyError(f"EMA state mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for n, t in state.items():
            self.shadow[n].copy_(t)
