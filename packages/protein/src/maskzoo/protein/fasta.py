"""FASTA reading and writing with validation that names the offending record.

A record is a header line ``>id description`` followed by one or more sequence lines; blank lines are allowed
between records. Errors (no records, text before the first header, a record without sequence, an invalid residue,
duplicate ids when ids must be unique) raise :class:`~maskzoo.core.errors.UserError` naming file, line and record.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open
from maskzoo.protein.alphabet import get_alphabet


@dataclass(frozen=True)
class Record:
    """One FASTA record: ``id`` (first word of the header), full ``description`` and the residue string."""

    id: str
    seq: str
    description: str = ""


def parse_fasta(lines: Iterable[str], source: str = "<fasta>", validate: bool = True) -> Iterator[Record]:
    """Yield records from FASTA ``lines``; residues are upper-cased and validated against the ESM alphabet."""
    alphabet = get_alphabet()
    header: str | None = None
    header_line = 0
    chunks: list[str] = []

    def finish() -> Record:
        name = header.split()[0] if header and header.split() else ""
        if not name:
            raise UserError(f"{source}:{header_line}: record with an empty header")
        seq = "".join(chunks)
        if not seq:
            raise UserError(f"{source}:{header_line}: record '{name}' has no sequence")
        if validate:
            seq = alphabet.validate(seq, f"{source}: record '{name}'")
        return Record(name, seq, header.strip())

    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            if header is not None:
                yield finish()
            header, header_line, chunks = line[1:], n, []
        elif header is None:
            raise UserError(f"{source}:{n}: not FASTA (text before the first '>' header)")
        else:
            chunks.append("".join(line.split()))
    if header is not None:
        yield finish()


def read_fasta(path: str | os.PathLike, validate: bool = True, unique_ids: bool = False) -> list[Record]:
    """All records of a FASTA file (``-`` reads stdin); an empty file is an error."""
    import sys

    if str(path) == "-":
        records = list(parse_fasta(sys.stdin, "<stdin>", validate))
        source = "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: no such FASTA file")
        try:
            with open(p, encoding="utf-8") as f:
                records = list(parse_fasta(f, str(p), validate))
        except UnicodeDecodeError:
            raise UserError(f"{p}: not a text FASTA file") from None
        source = str(p)
    if not records:
        raise UserError(f"{source}: no FASTA records found")
    if unique_ids:
        seen: set[str] = set()
        for r in records:
            if r.id in seen:
                raise UserError(f"{source}: duplicate record id '{r.id}'")
            seen.add(r.id)
    return records


def format_fasta(records: Iterable[Record], width: int = 0) -> str:
    """FASTA text; ``width`` > 0 wraps sequence lines."""
    out = io.StringIO()
    for r in records:
        out.write(f">{r.description or r.id}\n")
        if width > 0:
            for i in range(0, len(r.seq), width):
                out.write(r.seq[i : i + width] + "\n")
        else:
            out.write(r.seq + "\n")
    return out.getvalue()


def write_fasta(records: Iterable[Record], path: str | os.PathLike | None, width: int = 0) -> None:
    """Write records atomically to ``path`` (``None`` or ``-``: stdout)."""
    import sys

    text = format_fasta(records, width)
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_open(path, "w") as f:
        f.write(text)
