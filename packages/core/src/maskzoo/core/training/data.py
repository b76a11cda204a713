"""Resumable, deterministic, rank-sharded batch sources for the Trainer.

The Trainer accepts any iterable whose iterator yields batches and which has ``state_dict()`` /
``load_state_dict()`` describing the exact data position (:class:`ResumableSource`). After
``load_state_dict(s)`` the source yields exactly the batches that followed the moment ``s`` was taken.

Every source here draws its randomness from its own ``torch.Generator`` seeded from ``(seed, epoch)`` or
``(seed, batch index)``, never from the global RNG, so the data order is independent of the model code. Under
``torchrun`` each source produces the same *global* batch on every rank and each rank keeps its contiguous
slice ``[rank * b, (rank + 1) * b)`` with ``b = batch_size / world_size``: N processes with per-rank batch b see
exactly the examples one process sees with batch N * b.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import default_collate

from maskzoo.core.errors import UserError
from maskzoo.core.training.ddp import dist_info

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio) to decorrelate (seed, counter) pairs


def _seeded(seed: int, counter: int) -> torch.Generator:
    """A fresh CPU generator for stream ``seed`` at position ``counter``."""
    return torch.Generator().manual_seed((seed * _MIX + counter) % (2**63))


@runtime_checkable
class ResumableSource(Protocol):
    """What the Trainer needs from ``train_data``."""

    def __iter__(self) -> Iterator[Any]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _shard(batch_size: int, rank: int | None, world_size: int | None) -> tuple[int, int, int]:
    info = dist_info()
    rank = info.rank if rank is None else rank
    world_size = info.world_size if world_size is None else world_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size % world_size:
        raise UserError(f"global batch_size {batch_size} is not divisible by world_size {world_size}")
    return rank, world_size, batch_size // world_size


class IndexSampler:
    """An endless stream of indices into ``range(n)``: epoch after epoch, each a fresh permutation.

    The permutation of epoch e comes from a generator seeded by ``(seed, e)``, so the state is just
    ``{"epoch", "position"}`` and resuming is exact.
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0):
        if n <= 0:
            raise UserError("the training data is empty: nothing to sample batches from")
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch, self.position = 0, 0
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    def _epoch_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch:
            if self.shuffle:
                self._order = torch.randperm(self.n, generator=_seeded(self.seed, self.epoch))  # [n]
            else:
                self._order = torch.arange(self.n)  # [n]
            self._order_epoch = self.epoch
        assert self._order is not None
        return self._order

    def take(self, k: int) -> torch.Tensor:
        """The next ``k`` indices (crossing epoch boundaries as needed), LongTensor [k]."""
        out = []
        while k > 0:
            order = self._epoch_order()
            chunk = order[self.position : self.position + k]
            out.append(chunk)
            k -= len(chunk)
            self.position += len(chunk)
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise ValueError(f"sampler state is for {state['n']} items, this dataset has {self.n}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class ResumableLoader:
    """Endless batches from a map-style ``dataset`` (``len`` + ``__getitem__``), resumable and rank-sharded.

    ``batch_size`` is the GLOBAL batch per micro-step; each rank collates its ``batch_size / world_size`` items
    with ``collate_fn`` (default: ``torch.utils.data.default_collate``). ``rank``/``world_size`` default to the
    torchrun environment.
    """

    def __init__(
        self,
        dataset: Sequence[Any],
        batch_size: int,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn or default_collate
        self.rank, self.world_size, self.local_batch = _shard(batch_size, rank, world_size)
        self.sampler = IndexSampler(len(dataset), shuffle=shuffle, seed=seed)
        self.batches = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        idx = self.sampler.take(self.batch_size)  # [batch_size] global
        lo = self.rank * self.local_batch
        local = idx[lo : lo + self.local_batch].tolist()
        self.batches += 1
        return self.collate_fn([self.dataset[i] for i in local])

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def state_dict(self) -> dict:
        return {"sampler": self.sampler.state_dict(), "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.batches = int(state["batches"])


class RandomCropLoader:
    """Endless batches of random windows ``{"input_ids": [b, seq_len]}`` from one long 1-D token tensor.

    Batch k's window starts come from a generator seeded by ``(seed, k)``: uniform over all
    ``len(tokens) - seq_len + 1`` offsets, independent of the global RNG. State: ``{"batches": k}``.
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        seq_len: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be 1-D, got shape {tuple(tokens.shape)}")
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise UserError(f"seq_len must be a positive integer, got {seq_len!r}")
        if len(tokens) < seq_len:
            raise UserError(f"the training data has {len(tokens)} tokens, fewer than seq_len={seq_len}")
        self.tokens = tokens.long()  # [N]
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.rank, self.world_size, self.local_batch = _shard(batch_size, rank, world_size)
        self.batches = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        g = _seeded(self.seed, self.batches)
        high = len(self.tokens) - self.seq_len + 1
        starts = torch.randint(0, high, (self.batch_size,), generator=g)  # [batch_size] global
        lo = self.rank * self.local_batch
        starts = starts[lo : lo + self.local_batch]  # [b]
        offsets = starts[:, None] + torch.arange(self.seq_len)  # [b, L]
        self.batches += 1
        return {"input_ids": self.tokens[offsets]}  # [b, L]

    def state_dict(self) -> dict:
        return {"batches": self.batches, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state["batches"])
