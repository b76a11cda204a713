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
decay) and a frozen tower also stays in eval mode (:meth:`VisionLanguageModel.train`). The tower's own learning
rate is a param group's ``lr_scale`` (:func:`staged_param_groups`), which the core Trainer's schedule honours.
"""

from __future__ import annotations

from maskzoo.core.errors import UserError
from maskzoo.core.training import TrainConfig, param_groups
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


def staged_param_groups(model: VisionLanguageModel, cfg: TrainConfig, tower_scale: float) -> list[dict]:
    """AdamW groups for the core Trainer (``optimizer_groups=``): the core's decay/no-decay split, done separately
    for the tower (learning rate scaled by ``tower_scale`` through the group's ``lr_scale``) and the rest."""
    tower_ids = {id(p) for p in model.tower.parameters()}
    groups = []
    for g in param_groups(model, cfg.weight_decay, cfg.decay_embeddings):
        tower = [p for p in g["params"] if id(p) in tower_ids]
        rest = [p for p in g["params"] if id(p) not in tower_ids]
        groups += [{**g, "params": rest, "lr_scale": 1.0}, {**g, "params": tower, "lr_scale": tower_scale}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise UserError("nothing to train: every parameter is frozen")
    return groups
