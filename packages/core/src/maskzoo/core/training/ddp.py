"""Multi-process data-parallel helpers for runs launched with ``torchrun``.

``torchrun --nproc_per_node=N script.py`` sets RANK, WORLD_SIZE and LOCAL_RANK in each process's environment;
:func:`dist_info` reads them (a plain ``python script.py`` is rank 0 of 1). :func:`init_distributed` starts the
process group (gloo on CPU, nccl on CUDA). Only rank 0 writes files; every rank reads its own shard of each
global batch (see :mod:`maskzoo.core.training.data`), and DDP averages gradients across ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from maskzoo.core.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank/world size from an initialised process group, else from the torchrun environment variables."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def resolve_train_device(name: str, info: DistInfo) -> torch.device:
    """``auto`` -> cuda:LOCAL_RANK when CUDA is available, else cpu; ``cuda`` -> cuda:LOCAL_RANK under torchrun."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train device {name}: CUDA is not available on this machine")
    if name == "cuda":
        return torch.device("cuda", info.local_rank)
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"train device {name!r}: expected auto, cpu, cuda or cuda:N") from None


def init_distributed(device: torch.device, backend: str = "auto") -> DistInfo:
    """Start the default process group when launched by torchrun with WORLD_SIZE > 1 (no-op otherwise)."""
    info = dist_info()
    if info.distributed and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        info = dist_info()
    return info


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats over ranks (keys must agree across ranks); identity when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)  # [K]
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` as a list indexed by rank (``[obj]`` when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup() -> None:
    """Destroy the process group if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
