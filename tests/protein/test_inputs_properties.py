"""Property-based tests (hypothesis) of the protein input parsers: FASTA, variant tables, the sequence-or-path
decision and mutant strings. Every generated input either parses to what was written or raises a one-line
UserError; nothing else (no other exception type, no silently dropped record, column or row)."""

from __future__ import annotations

import csv
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import ACCEPTED, CANONICAL
from maskzoo.protein.fasta import Record, format_fasta, parse_fasta
from maskzoo.protein.inputs import NAME_MAX, is_sequence_text, read_sequence_arg
from maskzoo.protein.tables import parse_table
from maskzoo.protein.variants import parse_mutant

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=">"), min_size=1,
              max_size=12)  # fmt: skip
residues = st.text(alphabet=ACCEPTED + ACCEPTED.lower(), min_size=1, max_size=80)


def _one_line(e: UserError) -> bool:
    return "\n" not in str(e) and 0 < len(str(e)) < 400


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ids, residues), min_size=1, max_size=6), st.integers(0, 30))
def test_fasta_round_trip(records, width):
    text = format_fasta([Record(i, s, i) for i, s in records], width)
    parsed = list(parse_fasta(io.StringIO(text)))
    assert [(r.id, r.seq) for r in parsed] == [(i, s.upper()) for i, s in records]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fasta_arbitrary_text_parses_or_one_line_error(text):
    try:
        for r in parse_fasta(io.StringIO(text)):
            assert r.id and r.seq and set(r.seq) <= set(ACCEPTED)
    except UserError as e:
        assert _one_line(e)


names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_categories=("Cs",)),
                max_size=8)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(names, min_size=0, max_size=5), st.lists(st.lists(names, max_size=6), max_size=5),
       st.sampled_from([",", "\t"]), st.booleans())  # fmt: skip
def test_tables_parse_exactly_or_one_line_error(header, rows, delimiter, bom):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    for r in [header, *rows]:
        w.writerow(r)
    text = ("\ufeff" if bom else "") + buf.getvalue()
    required = header[0].strip() if header else "mutant"
    try:
        table = parse_table(text, "t.csv", delimiter, required or "mutant")
    except UserError as e:
        assert _one_line(e)
        return
    # accepted: the header is unique, every column is kept, every non-blank row is there, padded to the header
    assert table.fields == [h.strip() for h in header] and len(set(table.fields)) == len(table.fields)
    kept = [r for r in rows if any(c.strip() for c in r)]
    assert len(table.rows) == len(kept)
    for got, want in zip(table.rows, kept):
        assert list(got) == table.fields and [got[f] for f in table.fields][: len(want)] == want


def test_table_cases():
    with pytest.raises(UserError, match="repeated column name.*'score'"):
        parse_table("mutant,score,score\nA1C,1,2\n", "t.csv", ",", "mutant")
    with pytest.raises(UserError, match="empty file"):
        parse_table("", "t.csv", ",", "mutant")
    with pytest.raises(UserError, match="no column 'mutant'"):
        parse_table("variant,score\nA1C,1\n", "t.csv", ",", "mutant")
    assert parse_table("\ufeffmutant,score\nA1C,1\n", "t.csv", ",", "mutant").rows == [{"mutant": "A1C", "score": "1"}]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=CANONICAL, min_size=NAME_MAX + 1, max_size=2000))
def test_long_sequences_never_touch_the_file_system(monkeypatch, seq):
    def boom(*_):
        raise AssertionError("file system touched")

    monkeypatch.setattr(os.path, "isfile", boom)
    assert is_sequence_text(seq) and read_sequence_arg(seq, "--sequence") == seq


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=600))
def test_sequence_argument_is_a_sequence_a_file_or_one_line_error(text):
    try:
        seq = read_sequence_arg(text, "--sequence")
    except UserError as e:
        assert _one_line(e) and "--sequence" in str(e)
    else:
        assert seq and set(seq) <= set(ACCEPTED)


def test_sequence_argument_says_what_was_assumed(tmp_path):
    with pytest.raises(UserError, match=r"read as a sequence.*stop codon"):
        read_sequence_arg("MKT*", "--sequence")
    with pytest.raises(UserError, match="read as a file path"):
        read_sequence_arg("MKT-AYI", "--target")
    with pytest.raises(UserError, match="neither a sequence.*nor a file name"):
        read_sequence_arg("MKT-" + "A" * 300, "--sequence")
    f = tmp_path / "wt.fasta"
    f.write_text(">wt\nmktay\n")
    assert read_sequence_arg(str(f), "--sequence") == "MKTAY"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.integers(-3, 3))
def test_mutant_strings_parse_or_one_line_error(text, offset):
    wt = "MKTAYIAKQRQISFVKSHFSRQ"
    try:
        subs = parse_mutant(text, wt, offset)
    except UserError as e:
        assert _one_line(e)
    else:
        assert subs and all(wt[s.index] == s.wt and 0 <= s.index < len(wt) for s in subs)
