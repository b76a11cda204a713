"""LLaDA-V training stages: which parts train, and at which learning rate.

LLaDA-V (arXiv 2505.16933, sec. 3.3; its ``llada_v_pretrain.sh`` / ``llada_v_finetune.sh``):

==========  ======================================  =============================================
stage       trainable (``mm_tunable_parts``)        learning rate
==========  ======================================  =============================================
1           projector (``mm_mlp_adapter``)          lr (1e-3 in the paper)
2           projector + language model              lr (1e-5); tower optionally at ``tower_lr``
                                                    (``mm_vision_tower_lr`` = 2e-6)
==========  ======================================  =============================================

Frozen parameters get ``requires_grad = False``, so the core's AdamW never sees them (no update, no weight
decay) and a frozen tower also stays in eval mode (:meth:`VisionLanguageModel.train`). The core Trainer gives
every parameter group the same learning rate; :class:`StagedTrainer` adds a per-group ``lr_scale`` so the
tower can follow its own (proportionally scheduled) learning rate.
"""

from __future__ import annotations

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.training import TrainConfig, Trainer, WarmupCosineSchedule, param_groups
from maskzoo.vision.model import VisionLanguageModel
from maskzoo.vision.towers import set_trainable

#: stage -> (projector, language model) trainable; the tower is decided by ``train_tower``
STAGES: dict[int, tuple[bool, bool]] = {1: (True, False), 2: (True, True)}


def apply_stage(model: VisionLanguageModel, stage: int, train_tower: bool = False) -> dict[str, int]:
    """Set ``requires_grad`` per part for ``stage``; returns trainable parameter counts per part."""
    if stage not in STAGES:
        raise UserError(f"unknown training stage {stage}; LLaDA-V has stages {sorted(STAGES)}")
    projector, lm = STAGES[stage]
    if stage == 1 and train_tower:
        raise UserError("stage 1 trains the projector only; train_tower needs stage 2")
    set_trainable(model.projector, projector)
    if model.image_newline is not None:
        model.image_newline.requires_grad_(projector)
    set_trainable(model.lm, lm)
    set_trainable(model.tower, train_tower)
    model.train(model.training)  # re-apply the frozen-tower eval rule
    return {name: sum(p.numel() for p in part.parameters() if p.requires_grad)
            for name, part in (("tower", model.tower), ("projector", model.projector), ("lm", model.lm))}


class ScaledSchedule(WarmupCosineSchedule):
    """The core warm-up + cosine schedule, multiplied by each parameter group's ``lr_scale``."""

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        lr = self.current_lr()
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr


def build_staged_optimizer(model: VisionLanguageModel, cfg: TrainConfig, tower_scale: float) -> torch.optim.AdamW:
    """AdamW with the core's decay/no-decay split, done separately for the tower (scaled LR) and the rest."""
    tower_ids = {id(p) for p in model.tower.parameters()}
    groups = []
    for g in param_groups(model, cfg.weight_decay, cfg.decay_embeddings):
        tower = [p for p in g["params"] if id(p) in tower_ids]
        rest = [p for p in g["params"] if id(p) not in tower_ids]
        groups += [{**g, "params": rest, "lr_scale": 1.0}, {**g, "params": tower, "lr_scale": tower_scale}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise UserError("nothing to train: every parameter is frozen")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)


class StagedTrainer(Trainer):
    """The core :class:`Trainer` with per-part learning rates (``tower_lr_scale`` for the vision tower).

    Local work-around: the core's optimizer gives all groups one learning rate, so this subclass swaps in
    :func:`build_staged_optimizer` and :class:`ScaledSchedule` before any resume loads their state.
    """

    def __init__(self, *args, tower_lr_scale: float = 1.0, **kwargs) -> None:
        self._tower_lr_scale = tower_lr_scale
        self._swapped = False
        super().__init__(*args, **kwargs)
        self._swap()

    def _swap(self) -> None:
        if not self._swapped:
            self.optimizer = build_staged_optimizer(self.model, self.config, self._tower_lr_scale)
            self.schedule = ScaledSchedule(self.config)
            self._swapped = True

    def _resume(self, resume) -> None:  # called by Trainer.__init__ after the optimizer exists
        self._swap()
        super()._resume(resume)
