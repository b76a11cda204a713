"""Per-sequence ELBO / PLL scores: exact against models whose likelihood is known in closed form, unbiased draws,
and the same score per sequence whatever the batch composition."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn as nn

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import CANONICAL, get_alphabet
from maskzoo.protein.model import ESM2, ESM2Config
from maskzoo.protein.scoring import elbo_masks, score_sequences, stratified_counts

A = get_alphabet()


class PositionTable(nn.Module):
    """p(x_i) = softmax(table[i]) whatever the context: NLL(x) = sum_i -log p_i(x_i), and ELBO = PLL = NLL."""

    def __init__(self, length: int = 64) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(length, len(A), generator=torch.Generator().manual_seed(1)))

    def forward(self, ids, attention_mask=None):
        return self.table[: ids.shape[1]].expand(ids.shape[0], -1, -1)  # [B, L, V]

    def nll_bits(self, seq: str) -> float:
        logp = torch.log_softmax(self.table.detach(), -1)
        return -sum(float(logp[i + 1, A.esm.get_idx(c)]) for i, c in enumerate(seq)) / (len(seq) * math.log(2))


class CountModel(nn.Module):
    """-log p(x_i) = f(m), m = number of masked tokens in the row: NELBO(x) = sum_{m=1}^n f(m) (LLaDA eq. 6)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, ids, attention_mask=None):
        m = (ids == A.mask_id).sum(-1).float()  # [B]
        logits = torch.zeros(*ids.shape, len(A))  # [B, L, V]
        logits[..., A.esm.get_idx("A")] = 2.0 - self.w * m[:, None]
        return logits

    def f(self, m: int) -> float:
        with torch.no_grad():
            logits = self.forward(torch.full((1, m), A.mask_id))[0, 0]
        return float(-torch.log_softmax(logits, -1)[A.esm.get_idx("A")])


def test_elbo_is_exact_for_a_mask_count_model():
    model, n = CountModel(), 7
    exact = sum(model.f(m) for m in range(1, n + 1)) / (n * math.log(2))
    for k in (n, 2 * n, 3 * n):  # every count stratum hit equally often: the estimator has no error
        (s,) = score_sequences(model, ["A" * n], samples=k, quiet=True)
        assert s.bits_per_residue == pytest.approx(exact, rel=1e-9)
    # fewer draws: unbiased, so the mean over seeds approaches the exact value
    est = [score_sequences(model, ["A" * n], samples=3, seed=s, quiet=True)[0].bits_per_residue for s in range(300)]
    assert sum(est) / len(est) == pytest.approx(exact, rel=0.02)
    assert max(est) - min(est) > 0.01  # ... and does vary: the test above can fail


def test_elbo_and_pll_equal_the_nll_of_a_factorised_model():
    model = PositionTable()
    r = random.Random(0)
    seqs = ["".join(r.choice(CANONICAL) for _ in range(r.randint(1, 40))) for _ in range(6)]
    for s, seq in zip(score_sequences(model, seqs, samples=3, pll=True, quiet=True), seqs):
        assert s.length == len(seq)
        assert s.pll_bits_per_residue == pytest.approx(model.nll_bits(seq), rel=1e-6)
    # the ELBO draws are unbiased: averaged over seeds they reach the NLL (per draw, which residues are masked
    # matters, so single estimates scatter)
    seq = seqs[1]
    est = [score_sequences(model, [seq], samples=4, seed=s, quiet=True)[0].bits_per_residue for s in range(200)]
    sd = torch.tensor(est).std().item()
    assert sd > 0 and abs(sum(est) / len(est) - model.nll_bits(seq)) < 4 * sd / math.sqrt(len(est))


def test_stratified_counts_and_masks():
    g = torch.Generator().manual_seed(0)
    assert sorted(stratified_counts(9, 9, g).tolist()) == list(range(1, 10))
    m = elbo_masks(12, 24, g)
    assert m.shape == (24, 12) and sorted(m.sum(1).tolist()) == sorted(list(range(1, 13)) * 2)


def test_scores_do_not_depend_on_batch_composition():
    torch.manual_seed(0)
    model = ESM2(ESM2Config(num_layers=2, embed_dim=32, attention_heads=4, max_seq_len=80)).eval()
    r = random.Random(1)
    seqs = ["".join(r.choice(CANONICAL) for _ in range(r.randint(3, 60))) for _ in range(8)]
    ids = [f"s{i}" for i in range(8)]
    big = score_sequences(model, seqs, ids, samples=4, pll=True, max_tokens=4000, quiet=True)
    order = list(range(8))
    r.shuffle(order)
    alone = score_sequences(model, [seqs[i] for i in order], [ids[i] for i in order], samples=4, pll=True,
                            max_tokens=1, quiet=True)  # fmt: skip
    by_id = {s.id: s for s in alone}
    for s in big:
        assert s.bits_per_residue == pytest.approx(by_id[s.id].bits_per_residue, abs=1e-5)
        assert s.pll_bits_per_residue == pytest.approx(by_id[s.id].pll_bits_per_residue, abs=1e-5)
    assert len({round(s.bits_per_residue, 6) for s in big}) == 8


def test_bad_input_is_refused_before_any_work():
    model = ESM2(ESM2Config(num_layers=1, embed_dim=16, attention_heads=2, max_seq_len=12)).eval()
    with pytest.raises(UserError, match="record 'long'.*context"):
        score_sequences(model, ["ACD", "A" * 11], ["ok", "long"], quiet=True)
    with pytest.raises(UserError, match="record 'bad'.*'J'"):
        score_sequences(model, ["ACJ"], ["bad"], quiet=True)
    with pytest.raises(UserError, match="samples"):
        score_sequences(model, ["ACD"], samples=0, quiet=True)
