"""Packed training rows: a packed segment gets exactly the logits it gets alone, rows respect their length, every
example appears once per epoch, and the packed loader resumes exactly."""

from __future__ import annotations

import random

import torch

from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.dataset import Example, collate
from maskzoo.protein.model import ESM2, ESM2Config, segment_positions
from maskzoo.protein.packing import PackedLoader, collate_packed, first_fit_decreasing

A = get_alphabet()


def _examples(n=50, seed=0, lo=3, hi=70):
    r = random.Random(seed)
    return [Example(torch.tensor(A.residue_ids("".join(r.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(r.randint(lo, hi))))))
            for _ in range(n)]  # fmt: skip


def test_segment_positions_restart_at_each_segment():
    seg = torch.tensor([[0, 0, 0, 1, 1, 2, -1, -1], [0, 0, 0, 0, 0, 0, 0, 0]])
    assert segment_positions(seg).tolist() == [[0, 1, 2, 0, 1, 0, 0, 1], list(range(8))]


def test_packed_segments_equal_their_unpacked_logits():
    torch.manual_seed(0)
    model = ESM2(ESM2Config(num_layers=2, embed_dim=32, attention_heads=4)).eval()
    parts = [(e.residues, None) for e in _examples(5, seed=1, hi=12)]
    rows = [parts[:3], parts[3:]]
    packed = collate_packed(rows, row_len=sum(len(p[0]) + 2 for p in parts[:3]) + 4)  # room left: padding
    alone = collate(parts)
    with torch.no_grad():
        lp = model(packed["input_ids"], packed["attention_mask"])  # [2, R, V]
        la = model(alone["input_ids"], alone["attention_mask"])  # [5, L, V]
    k = 0
    for b, row in enumerate(rows):
        pos = 0
        for residues, _ in row:
            n = len(residues) + 2
            torch.testing.assert_close(lp[b, pos : pos + n], la[k, :n], atol=1e-5, rtol=1e-5)
            assert packed["maskable"][b, pos + 1 : pos + n - 1].all() and not packed["maskable"][b, pos]
            pos, k = pos + n, k + 1
        assert (packed["attention_mask"][b, pos:] == 0).all() and (packed["input_ids"][b, pos:] == A.pad_id).all()


def test_first_fit_decreasing_fills_rows_within_capacity():
    r = random.Random(0)
    lengths = [r.randint(1, 50) for _ in range(200)]
    rows = first_fit_decreasing(lengths, 50, range(200))
    assert sorted(i for row in rows for i in row) == list(range(200))
    assert all(sum(lengths[i] for i in row) <= 50 for row in rows)
    assert len(rows) <= 11 / 9 * (sum(lengths) / 50) + 2  # FFD bound against the volume lower bound


def test_packed_loader_covers_the_epoch_and_resumes_exactly():
    ex = _examples(60, seed=2)
    loader = PackedLoader(ex, max_tokens=4 * 42, crop_len=40, seed=5, bucket=25)
    plan = loader.epoch_plan(0)
    assert sorted(i for b in plan for r in b for i in loader._rows[r]) == list(range(60))
    tokens = 0
    for _ in range(len(plan)):
        b = next(loader)
        assert b["input_ids"].shape[1] == 42 and b["input_ids"].shape[0] <= 4
        tokens += int(b["maskable"].sum())
    assert tokens == sum(min(len(e.residues), 40) for e in ex)  # every residue of every crop, once
    state = loader.state_dict()
    after = [next(loader) for _ in range(3)]
    again = PackedLoader(ex, max_tokens=4 * 42, crop_len=40, seed=5, bucket=25)
    again.load_state_dict(state)
    for x, y in zip(after, [next(again) for _ in range(3)]):
        assert all(torch.equal(x[k], y[k]) for k in x)
