"""Training data for DSM: FASTA chains (or target/binder pairs) in token-budget batches with random crops.

Each example is the residue ids of one chain, or of a (target, binder) pair. A batch is built as

* single chains: ``[<cls>] crop(chain) [<eos>]``; every residue is maskable, the special tokens never are;
* pairs (DSM-ppi, Hallee et al. 2025): ``[<cls>] target [<eos>] binder [<eos>]``; only binder residues are
  maskable, so the model learns p(binder | target) and the target is always fully visible;

right-padded with ``<pad>`` (``attention_mask`` = 0, not maskable). Chains longer than ``crop_len`` residues are cut to
a uniformly random window of ``crop_len`` (ESM-2 trains on random crops of 1022 residues); a pair longer than
``crop_len`` gets its binder cut to at most ``crop_len // 2`` and its target to the remaining room.

Batching follows fair-esm's token budget: each epoch is a seeded permutation, cut into buckets of ``bucket``
examples; inside a bucket examples are sorted by (cropped) length and grouped so that ``count x longest <=
max_tokens``; the batch order is then shuffled. All randomness comes from generators seeded by
``(seed, epoch)`` and ``(seed, batch counter)``, so ``state_dict()`` = ``{epoch, position, batches}`` resumes exactly.
Under torchrun, rank r takes batches r, r + W, r + 2W, ... of the global stream.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.batching import token_budget_batches

_MIX = 0x9E3779B97F4A7C15


def _gen(seed: int, counter: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * _MIX + counter * 1_000_003 + stream) % (2**63))


@dataclass(frozen=True)
class Example:
    """Residue ids of a chain; ``target`` holds the target's ids for a DSM-ppi pair (``residues`` = binder)."""

    residues: torch.Tensor  # [n] long
    target: torch.Tensor | None = None  # [m] long


def load_examples(path: str | Path, paired: bool = False, min_len: int = 1) -> list[Example]:
    """Chains from a FASTA file, or pairs from a CSV/TSV with ``target`` and ``binder`` columns."""
    a = get_alphabet()
    path = Path(path)
    if paired:
        if not path.is_file():
            raise UserError(f"{path}: no such pairs file")
        delimiter = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            missing = {"target", "binder"} - set(reader.fieldnames or [])
            if missing:
                raise UserError(
                    f"{path}: a pairs file needs columns target and binder (missing {sorted(missing)})"
                )
            out = [
                Example(
                    torch.tensor(a.residue_ids(r["binder"] or "", f"{path} row {n} binder")),
                    torch.tensor(a.residue_ids(r["target"] or "", f"{path} row {n} target")),
                )
                for n, r in enumerate(reader, start=2)
            ]
    else:
        from maskzoo.protein.fasta import read_fasta

        out = [
            Example(torch.tensor(a.residue_ids(r.seq, r.id)))
            for r in read_fasta(path)
            if len(r.seq) >= min_len
        ]
    if not out:
        raise UserError(f"{path}: no training examples")
    return out


def crop_example(ex: Example, crop_len: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random window(s) so that the residues (binder + target for a pair) total at most ``crop_len``."""

    def window(x: torch.Tensor, n: int) -> torch.Tensor:
        if len(x) <= n:
            return x
        start = int(torch.randint(0, len(x) - n + 1, (1,), generator=g))
        return x[start : start + n]

    if ex.target is None:
        return window(ex.residues, crop_len), None
    binder = window(ex.residues, max(1, min(len(ex.residues), crop_len // 2)))
    target = window(ex.target, max(1, crop_len - len(binder)))
    return binder, target


def collate(parts: Sequence[tuple[torch.Tensor, torch.Tensor | None]]) -> dict[str, torch.Tensor]:
    """Encode cropped examples into ``input_ids``, ``attention_mask`` and ``maskable`` [B, L]."""
    a = get_alphabet()
    rows, maskable_rows = [], []
    for residues, target in parts:
        cls_, eos = torch.tensor([a.cls_id]), torch.tensor([a.eos_id])
        if target is None:
            ids = torch.cat([cls_, residues, eos])
            m = torch.zeros(len(ids), dtype=torch.bool)
            m[1 : 1 + len(residues)] = True
        else:
            ids = torch.cat([cls_, target, eos, residues, eos])
            m = torch.zeros(len(ids), dtype=torch.bool)
            m[len(target) + 2 : len(target) + 2 + len(residues)] = True  # binder residues only
        rows.append(ids)
        maskable_rows.append(m)
    input_ids = a.batch(rows)  # [B, L]
    maskable = torch.zeros_like(input_ids, dtype=torch.bool)
    for i, m in enumerate(maskable_rows):
        maskable[i, : len(m)] = m
    return {"input_ids": input_ids, "attention_mask": (input_ids != a.pad_id).long(), "maskable": maskable}


class TokenBudgetLoader:
    """Endless, resumable, length-bucketed batches of cropped examples (see the module docstring)."""

    def __init__(
        self,
        examples: Sequence[Example],
        max_tokens: int,
        crop_len: int,
        *,
        seed: int = 0,
        bucket: int = 1000,
        max_batch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not examples:
            raise UserError("no training examples")
        if max_tokens < crop_len + 3:
            raise UserError(
                f"max_tokens ({max_tokens}) must hold one cropped sequence ({crop_len} + 3 tokens)"
            )
        self.examples = list(examples)
        self.max_tokens, self.crop_len, self.seed = max_tokens, crop_len, seed
        self.bucket, self.max_batch = bucket, max_batch
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position, self.batches = 0, 0, 0
        self._plan: list[list[int]] | None = None
        self._plan_epoch = -1

    def _cropped_len(self, ex: Example) -> int:
        n = len(ex.residues) + (len(ex.target) + 1 if ex.target is not None else 0)
        return min(n, self.crop_len) + 2

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """The batches (index lists) of ``epoch``: bucketed, length-sorted, token-budgeted, shuffled."""
        g = _gen(self.seed, epoch, 0)
        perm = torch.randperm(len(self.examples), generator=g).tolist()
        lengths = [self._cropped_len(ex) for ex in self.examples]
        batches: list[list[int]] = []
        for s in range(0, len(perm), self.bucket):
            chunk = sorted(perm[s : s + self.bucket], key=lambda i: lengths[i])
            batches.extend(token_budget_batches(lengths, self.max_tokens, self.max_batch, order=chunk))
        order = torch.randperm(len(batches), generator=g).tolist()
        return [batches[i] for i in order]

    def _current_plan(self) -> list[list[int]]:
        if self._plan_epoch != self.epoch:
            self._plan, self._plan_epoch = self.epoch_plan(self.epoch), self.epoch
        assert self._plan is not None
        return self._plan

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        plan = self._current_plan()
        if self.position + self.world_size > len(plan):  # not enough batches left for every rank: next epoch
            self.epoch, self.position = self.epoch + 1, 0
            plan = self._current_plan()
            if len(plan) < self.world_size:
                raise UserError(
                    f"an epoch has {len(plan)} batches, fewer than the {self.world_size} processes"
                )
        idx = plan[self.position + self.rank]
        g = _gen(self.seed, self.batches * self.world_size + self.rank, 1)
        batch = self.make_batch(idx, g)
        self.position += self.world_size
        self.batches += 1
        return batch

    def make_batch(self, idx: list[int], g: torch.Generator) -> dict[str, torch.Tensor]:
        """The batch of plan entry ``idx`` (example indices), cropped with ``g``."""
        return collate([crop_example(self.examples[i], self.crop_len, g) for i in idx])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "batches": self.batches, "seed": self.seed,
                "n": len(self.examples)}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != len(self.examples):
            raise UserError(
                f"checkpoint data state is for {state['n']} examples, this dataset has {len(self.examples)}"
            )
        self.epoch, self.position, self.batches = (
            int(state["epoch"]),
            int(state["position"]),
            int(state["batches"]),
        )


def fixed_eval_batches(
    examples: Sequence[Example], crop_len: int, max_tokens: int, limit: int | None = None, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """Deterministic validation batches: the first ``limit`` examples, cropped with a fixed seed."""
    ex = list(examples)[:limit] if limit else list(examples)
    g = _gen(seed, 0, 2)
    parts = [crop_example(e, crop_len, g) for e in ex]
    lengths = [len(p[0]) + (len(p[1]) + 1 if p[1] is not None else 0) + 2 for p in parts]
    return [collate([parts[i] for i in b]) for b in token_budget_batches(lengths, max_tokens)]
