"""``--sequence`` / ``--target``: a residue string or a one-record FASTA file, decided without guessing wrong.

Decision (``is_sequence_text``), made without touching the file system whenever the text cannot be a path:

* only letters (and ``*``, the stop codon, which validation then refuses with a clear line) -> a sequence, except
  a short (<= 255 characters) text that names an existing file, which is read as the file;
* anything else (a ``/``, a ``.``, digits, ...) -> a file path; a text with a path component longer than 255
  characters cannot be a file name on any common file system and is refused before any ``open``.

Every error says which reading was assumed, so ``--sequence MKT-AYI`` (a gap, read as a path) is easy to fix.
"""

from __future__ import annotations

import os
import re

from maskzoo.core.errors import UserError

NAME_MAX = 255
_LETTERS = re.compile(r"[A-Za-z*]+")


def is_sequence_text(text: str) -> bool:
    """True when ``text`` is to be read as residues rather than a path (module docstring)."""
    s = text.strip()
    if not _LETTERS.fullmatch(s):
        return False
    return len(s) > NAME_MAX or not os.path.isfile(s)


def read_sequence_arg(value: str, option: str) -> str:
    """The residues ``value`` gives for ``option``: itself, or the one record of the FASTA file it names."""
    from maskzoo.protein.alphabet import get_alphabet
    from maskzoo.protein.fasta import read_fasta

    if not value.strip():
        raise UserError(f"{option}: empty value (give a sequence or a one-record FASTA file)")
    if is_sequence_text(value):
        return get_alphabet().validate(value, f"{option} (read as a sequence)")
    if any(len(part) > NAME_MAX for part in re.split(r"[/\\]", value)):
        bad = next((c for c in value if not c.isalpha()), "?")
        raise UserError(f"{option}: {value[:40]!r}... is neither a sequence ({bad!r} is not a residue letter) "
                        f"nor a file name (longer than {NAME_MAX} characters)")
    if not os.path.isfile(value):
        raise UserError(f"{option} {value!r:.80}: no such file (read as a file path because it has characters "
                        "other than residue letters)")
    try:
        records = read_fasta(value)
    except UserError as e:
        raise UserError(f"{option} (read as a FASTA file): {e}") from None
    if len(records) != 1:
        raise UserError(f"{option} {value}: expected exactly one record, found {len(records)}")
    return records[0].seq
