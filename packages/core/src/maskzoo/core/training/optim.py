"""AdamW with decay only where it belongs, and the linear-warm-up + cosine learning-rate schedule.

Weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") is applied to weight
matrices only: never to biases or normalisation gains (1-D parameters), and to embeddings only when asked.

Schedule (per optimizer update s, peak ``lr``, floor ``min_lr``, warm-up W, total S)::

    lr(s) = lr * (s + 1) / W                                   for s < W
    lr(s) = min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2     p = (s - W) / max(1, S - W), clipped to [0, 1]

(GPT-3 style: Brown et al. 2020; SGDR cosine: Loshchilov & Hutter 2017.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from maskzoo.core.errors import UserError
from maskzoo.core.training.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float, decay_embeddings: bool = True) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed AdamW group (shared params counted once)."""
    embedding_params = set()
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            embedding_params.add(id(m.weight))
    decay, no_decay = [], []
    for _, p in model.named_parameters():  # named_parameters() already drops tied duplicates
        if not p.requires_grad:
            continue
        is_embedding = id(p) in embedding_params
        if p.ndim < 2 or (is_embedding and not decay_embeddings):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, groups: list[dict] | None = None
) -> torch.optim.AdamW:
    """AdamW as configured (fused kernels on CUDA) over ``groups`` (default: :func:`param_groups` of ``model``).

    A group may carry ``"lr_scale"``: its learning rate is the schedule's times that factor (e.g. a slower
    vision tower); ``"weight_decay"`` set in a group overrides ``cfg.weight_decay``.
    """
    groups = groups if groups is not None else param_groups(model, cfg.weight_decay, cfg.decay_embeddings)
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise UserError("nothing to train: the model has no trainable parameters")
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps, fused=True if on_cuda else None
    )


def warmup_cosine(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate for optimizer update ``step`` (0-based), see module docstring."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets the learning rate of every param group before each update; state is the update counter.

    Usage: ``sched.apply(optimizer)`` before ``optimizer.step()``, then ``sched.step()``. A param group's
    ``"lr_scale"`` multiplies its learning rate.
    """

    def __init__(self, cfg: TrainConfig):
        self.lr, self.min_lr = cfg.lr, cfg.min_lr
        self.warmup_steps, self.total_steps = cfg.warmup_steps, cfg.max_steps
        self.step_count = 0

    def current_lr(self) -> float:
        return warmup_cosine(
            self.step_count,
            lr=self.lr,
            min_lr=self.min_lr,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
        )

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Write the current learning rate (times each group's ``lr_scale``, default 1) into ``optimizer``."""
        lr = self.current_lr()
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
