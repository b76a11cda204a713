"""LoRA (Hu et al. 2021) on the LM's attention projections, as Whisper-LLaDA fine-tunes LLaDA's q/k/v.

    y = W x + (alpha / r) B A x,   A [r, d_in] ~ N(0, 1/r), B [d_out, r] = 0   (W frozen; starts as W exactly)

``peft`` is not used: it requires transformers, which maskzoo does not depend on, and our projections are plain
``nn.Linear`` modules, which a 20-line wrapper covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError("LoRA rank must be >= 1")
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / rank)  # [r, d_in]
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))  # [d_out, r]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.lora_a.T) @ self.lora_b.T  # [..., d_out]


def apply_lora(model: nn.Module, targets: Sequence[str] = ("q_proj", "k_proj", "v_proj"), rank: int = 8,
               alpha: float = 16.0) -> list[str]:
    """Wrap every ``nn.Linear`` child named in ``targets`` with :class:`LoRALinear`; returns the wrapped names."""
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, rank, alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    return wrapped
