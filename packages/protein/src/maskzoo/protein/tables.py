"""Reading the variant tables of ``score-variants``: CSV or TSV (by extension) with a header row.

Rules, each a one-line ``UserError`` naming the file: the file must exist, be UTF-8 text (a leading byte-order
mark is accepted and dropped), have a header with no empty and no repeated column names (``csv.DictReader``
would silently keep only the last of two equal names), contain the mutant column, and at least one row; a row
with more fields than the header is refused, a shorter one gets empty strings.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from maskzoo.core.errors import UserError


@dataclass
class Table:
    """Header ``fields``, the rows as ``{field: text}`` dicts, and the delimiter to write back with."""

    fields: list[str]
    rows: list[dict[str, str]]
    delimiter: str


def delimiter_for(path: str | Path) -> str:
    """Tab for ``.tsv`` / ``.tab`` files, else a comma."""
    return "\t" if Path(path).suffix.lower() in {".tsv", ".tab"} else ","


def parse_table(text: str, source: str, delimiter: str, required: str) -> Table:
    """Parse table ``text`` (see the module docstring); ``required`` is the column that must be present."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise UserError(f"{source}: empty file (expected a header row with a {required!r} column)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
        body = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise UserError(f"{source}: not a valid {'TSV' if delimiter == chr(9) else 'CSV'} file ({e})") from None
    if any(not h for h in header):
        raise UserError(f"{source}: the header has an empty column name")
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise UserError(f"{source}: repeated column name(s) {', '.join(map(repr, dups))} in the header")
    if required not in header:
        raise UserError(f"{source}: no column {required!r} (columns: {', '.join(header)}); use --mutation-col")
    if not body:
        raise UserError(f"{source}: no variants (header only)")
    rows = []
    for n, r in enumerate(body, start=2):
        if len(r) > len(header):
            raise UserError(f"{source}: row {n} has {len(r)} fields, the header has {len(header)}")
        rows.append(dict(zip(header, [*r, *[""] * (len(header) - len(r))])))
    return Table(header, rows, delimiter)


def read_table(path: str | Path, required: str) -> Table:
    """Read and check a CSV/TSV variant table from ``path``."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such variants file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a UTF-8 text file") from None
    return parse_table(text, str(p), delimiter_for(p), required)
