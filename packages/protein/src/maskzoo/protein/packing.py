"""Packed training batches: several short chains share one row, separated by a block-diagonal attention mask.

With random crops of ``crop_len`` residues, every row holds ``R = crop_len + 2`` tokens. Chains at least that long
fill a row alone; shorter ones are packed together by first-fit decreasing (Johnson 1973: at most 11/9 OPT + 1 rows)
inside each bucket of the epoch's permutation, so padding is what is left over at the end of a row, typically a few
tokens. A row's ``attention_mask`` numbers its segments (1, 2, ...; 0 = padding): ``maskzoo.protein.model.ESM2``
turns that into ``maskzoo.core.attention.block_diagonal_mask`` and restarts rotary positions at each segment, so a
packed segment sees exactly what it would see alone (a test checks the logits).

Each segment is ``[<cls>] residues [<eos>]`` as in unpacked batches. The diffusion loss draws one time ``t`` per row,
shared by the segments of that row: each segment's masks are still drawn independently with probability ``t``, so
the 1/t-weighted loss remains an unbiased NELBO estimate per residue (segments of a row are merely correlated
through ``t``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.dataset import Example, TokenBudgetLoader, _gen, crop_example


def first_fit_decreasing(lengths: Sequence[int], capacity: int, order: Sequence[int]) -> list[list[int]]:
    """Rows of indices from ``order``, longest first, each row's total length <= ``capacity``."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(order, key=lambda j: (-lengths[j], j)):
        n = lengths[i]
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(capacity - n)
    return rows


def collate_packed(
    rows: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor | None]]], row_len: int
) -> dict[str, torch.Tensor]:
    """Packed ``input_ids``, segment-numbered ``attention_mask`` and ``maskable`` [B, row_len] (chains only)."""
    a = get_alphabet()
    input_ids = torch.full((len(rows), row_len), a.pad_id, dtype=torch.long)  # [B, R]
    segments = torch.zeros((len(rows), row_len), dtype=torch.long)  # [B, R]
    maskable = torch.zeros((len(rows), row_len), dtype=torch.bool)  # [B, R]
    for b, row in enumerate(rows):
        pos = 0
        for s, (residues, target) in enumerate(row, start=1):
            if target is not None:
                raise ValueError("packing is for single chains (paired examples use unpacked batches)")
            n = len(residues)
            if pos + n + 2 > row_len:
                raise ValueError(f"row {b} overflows {row_len} tokens")
            input_ids[b, pos] = a.cls_id
            input_ids[b, pos + 1 : pos + 1 + n] = residues
            input_ids[b, pos + 1 + n] = a.eos_id
            segments[b, pos : pos + n + 2] = s
            maskable[b, pos + 1 : pos + 1 + n] = True
            pos += n + 2
    return {"input_ids": input_ids, "attention_mask": segments, "maskable": maskable}


class PackedLoader(TokenBudgetLoader):
    """``TokenBudgetLoader`` whose batches are ``max_tokens // (crop_len + 2)`` packed rows of ``crop_len + 2``.

    The epoch plan is deterministic in ``(seed, epoch)`` (cropped lengths do not depend on the crop offset), so
    the parent's ``state_dict`` resumes exactly.
    """

    def __init__(self, examples: Sequence[Example], max_tokens: int, crop_len: int, **kwargs) -> None:
        if any(ex.target is not None for ex in examples):
            raise ValueError("PackedLoader takes single chains; use TokenBudgetLoader for pairs")
        super().__init__(examples, max_tokens, crop_len, **kwargs)
        self.row_len = crop_len + 2
        self.rows_per_batch = max(1, max_tokens // self.row_len)
        self._rows: list[list[int]] = []

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """Batches as lists of row numbers into ``self._rows`` of this epoch."""
        g = _gen(self.seed, epoch, 0)
        perm = torch.randperm(len(self.examples), generator=g).tolist()
        lengths = [self._cropped_len(ex) for ex in self.examples]
        rows: list[list[int]] = []
        for s in range(0, len(perm), self.bucket):
            rows.extend(first_fit_decreasing(lengths, self.row_len, perm[s : s + self.bucket]))
        order = torch.randperm(len(rows), generator=g).tolist()
        self._rows = [rows[i] for i in order]
        k = self.rows_per_batch
        return [list(range(s, min(s + k, len(rows)))) for s in range(0, len(rows), k)]

    def make_batch(self, idx: list[int], g: torch.Generator) -> dict[str, torch.Tensor]:
        rows = [[crop_example(self.examples[i], self.crop_len, g) for i in self._rows[r]] for r in idx]
        return collate_packed(rows, self.row_len)
