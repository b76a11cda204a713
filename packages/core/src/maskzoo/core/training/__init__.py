"""The shared training loop: ``Trainer`` + ``TrainConfig``, resumable data sources, checkpoints, DDP helpers.

Example::

    from maskzoo.core.training import Trainer, TrainConfig, RandomCropLoader

    data = RandomCropLoader(tokens, seq_len=128, batch_size=32, seed=0)
    trainer = Trainer(model, loss_fn, data, TrainConfig(max_steps=2000), eval_fn, run_dir="runs/x", resume=True)
    final = trainer.fit()
"""

from maskzoo.core.training.checkpointing import find_latest, load_checkpoint, save_checkpoint, seed_everything
from maskzoo.core.training.config import TrainConfig
from maskzoo.core.training.data import IndexSampler, RandomCropLoader, ResumableLoader, ResumableSource
from maskzoo.core.training.ddp import DistInfo, dist_info
from maskzoo.core.training.ema import EMA
from maskzoo.core.training.metrics import read_metrics
from maskzoo.core.training.optim import WarmupCosineSchedule, build_optimizer, param_groups, warmup_cosine
from maskzoo.core.training.trainer import Trainer, autocast_dtype, move_to_device, unwrap_model

__all__ = [
    "EMA",
    "DistInfo",
    "IndexSampler",
    "RandomCropLoader",
    "ResumableLoader",
    "ResumableSource",
    "TrainConfig",
    "Trainer",
    "WarmupCosineSchedule",
    "autocast_dtype",
    "build_optimizer",
    "dist_info",
    "find_latest",
    "load_checkpoint",
    "move_to_device",
    "param_groups",
    "read_metrics",
    "save_checkpoint",
    "seed_everything",
    "unwrap_model",
    "warmup_cosine",
]
