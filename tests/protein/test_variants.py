"""Masked-marginal variant scoring against a hand computation; mutant parsing errors."""

from __future__ import annotations

import csv

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.checkpoints import load_model
from maskzoo.protein.variants import parse_mutant, score_csv, score_mutants

WT = "MKTAYIAKQRQISFVKSHFSRQ"


def _hand_score(model, wt: str, pos1: int, wt_aa: str, mt_aa: str) -> float:
    """log p(mt) - log p(wt) at 1-based pos1 with that one position masked, computed directly."""
    a = get_alphabet()
    ids = a.encode(wt).unsqueeze(0)  # [1, n+2]
    ids[0, pos1] = a.mask_id  # 1-based residue i sits at token index i (after <cls>)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids)[0, pos1], -1)
    return float(logp[a.esm.get_idx(mt_aa)] - logp[a.esm.get_idx(wt_aa)])


def test_scores_match_hand_computed_masked_marginals(tiny_dsm_dir):
    model = load_model(tiny_dsm_dir)
    s1 = _hand_score(model, WT, 4, "A", "C")
    s2 = _hand_score(model, WT, 10, "R", "W")
    got = score_mutants(model, WT, ["A4C", "R10W", "A4C:R10W", "A4A"])
    assert got[0] == pytest.approx(s1, abs=1e-5)
    assert got[1] == pytest.approx(s2, abs=1e-5)
    assert got[2] == pytest.approx(s1 + s2, abs=1e-5)  # multi-mutant: sum of single-site log-odds
    assert got[3] == pytest.approx(0.0, abs=1e-6)
    # offset: the same mutant numbered from 0
    assert score_mutants(model, WT, ["A3C"], offset_idx=0)[0] == pytest.approx(s1, abs=1e-5)


@pytest.mark.parametrize(
    "mutant, match",
    [
        ("A4", "malformed substitution"),
        ("4C", "malformed substitution"),
        ("A4C;R10W", "malformed"),
        ("", "empty mutant"),
        ("G4C", r"mutant 'G4C': wild-type mismatch at position 4"),
        ("A4C:G30T", "position 30 is outside"),
        ("A4C:A4D", "mutated twice"),
        ("A4J", "not an amino-acid letter"),
    ],
)
def test_bad_mutants(mutant, match):
    with pytest.raises(UserError, match=match):
        parse_mutant(mutant, WT)


def test_csv_keeps_columns_and_adds_score(tiny_dsm_dir, tmp_path):
    model = load_model(tiny_dsm_dir)
    src = tmp_path / "v.csv"
    src.write_text("id,mutant,DMS_score\n1,A4C,0.5\n2,A4C:R10W,-1\n")
    out = tmp_path / "o.csv"
    score_csv(model, WT, src, out)
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0].keys()) == ["id", "mutant", "DMS_score", "score"]
    assert [r["id"] for r in rows] == ["1", "2"] and rows[1]["DMS_score"] == "-1"
    # a wild-type mismatch anywhere: error naming the mutant and no output file
    bad = tmp_path / "bad.csv"
    bad.write_text("mutant\nA4C\nK4C\n")
    out2 = tmp_path / "o2.csv"
    with pytest.raises(UserError, match="'K4C'"):
        score_csv(model, WT, bad, out2)
    assert not out2.exists() and list(tmp_path.glob(".o2.csv*")) == []
    with pytest.raises(UserError, match="no column 'mutant_x'"):
        score_csv(model, WT, src, out2, mutant_col="mutant_x")
