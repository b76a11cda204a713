"""FASTA parsing/validation and the ESM alphabet."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.fasta import Record, format_fasta, read_fasta, write_fasta


def _write(tmp_path, text, name="x.fasta"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_alphabet_matches_fair_esm():
    import esm

    ref = esm.data.Alphabet.from_architecture("ESM-1b")
    a = get_alphabet()
    assert (a.cls_id, a.pad_id, a.eos_id, a.mask_id, len(a)) == (ref.cls_idx, ref.padding_idx, ref.eos_idx,
                                                                  ref.mask_idx, 33)  # fmt: skip
    ids = a.encode("MKV")
    _, _, toks = ref.get_batch_converter()([("x", "MKV")])
    assert torch.equal(ids, toks[0])
    assert a.decode(ids) == "MKV"
    assert set(a.canonical_ids.tolist()).isdisjoint({a.cls_id, a.pad_id, a.eos_id, a.mask_id})
    assert int((~a.noncanonical_mask).sum()) == 20


def test_read_multiline_and_lowercase(tmp_path):
    p = _write(tmp_path, ">a desc here\nmkt\nAYI\n\n>b\nGGL\n")
    recs = read_fasta(p)
    assert recs == [Record("a", "MKTAYI", "a desc here"), Record("b", "GGL", "b")]
    out = tmp_path / "o.fasta"
    write_fasta(recs, out, width=4)
    assert [r.seq for r in read_fasta(out)] == ["MKTAYI", "GGL"]
    assert format_fasta(recs).startswith(">a desc here\nMKTAYI\n")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "no FASTA records"),
        ("\n\n", "no FASTA records"),
        ("MKT\n>a\nMKT\n", "text before the first"),
        (">a\n>b\nMKT\n", "record 'a' has no sequence"),
        (">a\nMKT\n>b\nMK1T\n", r"record 'b'.*invalid residue '1' at position 3"),
        (">a\nMK*\n", r"record 'a'.*stop codon '\*' at position 3"),
        (">\nMKT\n", "empty header"),
    ],
)
def test_malformed_fasta(tmp_path, text, match):
    with pytest.raises(UserError, match=match):
        read_fasta(_write(tmp_path, text))


def test_duplicate_ids_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="duplicate record id 'a'"):
        read_fasta(_write(tmp_path, ">a\nMK\n>a\nKK\n"), unique_ids=True)
    with pytest.raises(UserError, match="no such FASTA file"):
        read_fasta(tmp_path / "missing.fasta")
