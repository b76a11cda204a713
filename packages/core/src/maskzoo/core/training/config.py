"""``TrainConfig``: every knob of the shared :class:`~maskzoo.core.training.trainer.Trainer`, as one dataclass.

It is an omegaconf structured-config schema (see :mod:`maskzoo.core.config`), so a recipe nests it
(``train: TrainConfig``) and the command line overrides it (``train.lr=1e-3``). Every field is read by the
trainer; there are no keys the code ignores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from maskzoo.core.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpointing settings of one training run.

    Steps count optimizer updates; one update consumes ``grad_accum_steps`` micro-batches from the data source.
    A value of 0 for ``save_every`` / ``eval_every`` / ``log_every`` means "only at the end".
    """

    max_steps: int = 1000
    """number of optimizer updates"""
    lr: float = 3e-4
    """peak learning rate reached after warm-up"""
    min_lr: float = 3e-5
    """learning rate at the end of the cosine decay"""
    warmup_steps: int = 100
    """linear warm-up from 0 to ``lr`` over this many updates"""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay on matrices (never on norms or biases)"""
    decay_embeddings: bool = True
    """also decay nn.Embedding weights"""
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_accum_steps: int = 1
    """micro-batches per update (gradients are averaged over them)"""
    grad_clip: float = 1.0
    """max global gradient L2 norm; <= 0 disables clipping (the norm is still logged)"""
    ema_decay: float = 0.0
    """exponential moving average of the weights; 0 disables, e.g. 0.999 enables (used for eval/export)"""
    precision: str = "auto"
    """auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16 (autocast + GradScaler)"""
    gradient_checkpointing: bool = False
    """sets ``model.gradient_checkpointing = True`` (the model must have the attribute)"""
    device: str = "auto"
    """auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda, cuda:N"""
    seed: int = 0
    """seeds python/numpy/torch at the start of a fresh run (rank r uses seed + r)"""
    log_every: int = 10
    """write a metrics.jsonl row every N updates"""
    eval_every: int = 0
    """run ``eval_fn`` every N updates (and always at the end, when given)"""
    eval_at_start: bool = True
    """run ``eval_fn`` once before the first update of a fresh run: a baseline row at step 0, and a mistake in
    the evaluation settings fails before training instead of after it"""
    save_every: int = 1000
    """write a checkpoint every N updates (and always at the end)"""
    keep_last: int = 3
    """number of checkpoints kept in run_dir/checkpoints"""
    progress: bool = True
    """tqdm progress bar on stderr (rank 0)"""
    ddp_backend: str = "auto"
    """torch.distributed backend under torchrun: auto (nccl on CUDA, gloo on CPU), gloo, nccl"""
    ddp_find_unused_parameters: bool = False
    """set when some trainable parameters may get no gradient in a step (e.g. an optional image branch)"""
    resume_allow_changes: list[str] = field(default_factory=list)
    """recipe keys (dotted, ``fnmatch`` patterns) that may differ from the stored recipe when resuming, beyond
    the built-in list of :data:`maskzoo.core.training.provenance.RESUMABLE` (max_steps, intervals, eval.*, ...)"""

    def validate(self) -> None:
        """Raise UserError for values no run can use (called when the Trainer is built, before any work)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"train config: {f.name} must be a finite number, got {value}")
        checks = [
            (self.max_steps >= 1, "max_steps must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.min_lr <= self.lr, "min_lr must be in [0, lr]"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)"),
            (self.grad_accum_steps >= 1, "grad_accum_steps must be >= 1"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.log_every >= 0 and self.eval_every >= 0 and self.save_every >= 0, "*_every must be >= 0"),
            (self.keep_last >= 1, "keep_last must be >= 1"),
            (self.adam_eps > 0, "adam_eps must be > 0"),
            (self.ddp_backend in ("auto", "gloo", "nccl"), "ddp_backend must be auto, gloo or nccl"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"train config: {msg}")
