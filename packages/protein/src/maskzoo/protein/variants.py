"""Zero-shot variant-effect scores: masked-marginal log-odds (Meier et al. 2021, "Language models enable zero-shot
prediction of the effects of mutations on protein function", NeurIPS; the ESM-1v "masked-marginals" strategy).

For a wild type x and a substitution ``W i M`` (wild-type letter W at position i, mutant letter M), mask position i
alone and read the model's conditional distribution there:

    s(WiM) = log p(x_i = M | x_{-i}) - log p(x_i = W | x_{-i})

A multi-mutant ``A24C:G30T`` scores the sum of its single-site terms (each position masked on its own, as in
ESM's ``predict.py``). Higher = predicted fitter. One forward pass per distinct mutated position, batched.

Position numbering: a mutant position ``p`` refers to ``sequence[p - offset_idx]`` (0-based); the default
``offset_idx = 1`` is the usual 1-based numbering.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open
from maskzoo.protein.alphabet import ACCEPTED, get_alphabet

_SUBSTITUTION = re.compile(r"^([A-Z])(-?\d+)([A-Z])$")


@dataclass(frozen=True)
class Substitution:
    wt: str
    index: int  # 0-based position in the wild-type sequence
    mt: str


def parse_mutant(text: str, wild_type: str, offset_idx: int = 1, separator: str = ":") -> list[Substitution]:
    """Parse ``A24C`` or ``A24C:G30T`` against ``wild_type``; errors name the mutant string.

    Checks: the pattern ``<letter><position><letter>``, accepted residue letters, position inside the sequence,
    the wild-type letter at that position, and no position listed twice.
    """
    subs: list[Substitution] = []
    raw = text.strip()
    if not raw:
        raise UserError("empty mutant string")
    seen: set[int] = set()
    for part in raw.split(separator):
        m = _SUBSTITUTION.match(part.strip().upper())
        if m is None:
            raise UserError(f"mutant {raw!r}: malformed substitution {part.strip()!r} (expected e.g. A24C)")
        wt, pos, mt = m.group(1), int(m.group(2)), m.group(3)
        for letter in (wt, mt):
            if letter not in ACCEPTED:
                raise UserError(f"mutant {raw!r}: {letter!r} is not an amino-acid letter")
        idx = pos - offset_idx
        if not 0 <= idx < len(wild_type):
            raise UserError(
                f"mutant {raw!r}: position {pos} is outside the sequence (length {len(wild_type)}, offset-idx {offset_idx})"
            )
        if wild_type[idx] != wt:
            raise UserError(
                f"mutant {raw!r}: wild-type mismatch at position {pos}: the sequence has {wild_type[idx]!r}, "
                f"the mutant says {wt!r} (check --offset-idx)"
            )
        if idx in seen:
            raise UserError(f"mutant {raw!r}: position {pos} is mutated twice")
        seen.add(idx)
        subs.append(Substitution(wt, idx, mt))
    return subs


@torch.no_grad()
def masked_marginals(
    model: torch.nn.Module, wild_type: str, positions: list[int], batch_size: int = 16
) -> dict[int, torch.Tensor]:
    """``{i: log p(. | x_{-i}) [V]}`` for each 0-based position ``i``, masking one position per row."""
    alphabet = get_alphabet()
    ids = alphabet.encode(wild_type)  # [n + 2]
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    if limit is not None and len(ids) > limit:
        raise UserError(
            f"wild-type sequence of {len(wild_type)} residues is longer than the model's context ({limit - 2} residues)"
        )
    device = next(model.parameters()).device
    out: dict[int, torch.Tensor] = {}
    uniq = sorted(set(positions))
    for s in range(0, len(uniq), batch_size):
        chunk = uniq[s : s + batch_size]
        x = ids.unsqueeze(0).repeat(len(chunk), 1)  # [b, n + 2]
        rows = torch.arange(len(chunk))
        cols = torch.tensor(chunk) + 1  # +1 for <cls>
        x[rows, cols] = alphabet.mask_id
        logits = model(x.to(device)).float()  # [b, n + 2, V]
        logp = torch.log_softmax(logits[rows, cols.to(device)], dim=-1).cpu()  # [b, V]
        for i, p in zip(chunk, logp):
            out[i] = p
    return out


def score_mutants(
    model: torch.nn.Module, wild_type: str, mutants: list[str], offset_idx: int = 1, batch_size: int = 16
) -> list[float]:
    """Masked-marginal scores of each mutant string (validated first, so nothing is computed for bad input)."""
    alphabet = get_alphabet()
    wild_type = alphabet.validate(wild_type, "wild-type sequence")
    parsed = [parse_mutant(m, wild_type, offset_idx) for m in mutants]
    positions = [s.index for subs in parsed for s in subs]
    logp = masked_marginals(model, wild_type, positions, batch_size)
    tok = alphabet.esm.get_idx
    scores = []
    for subs in parsed:
        scores.append(float(sum(logp[s.index][tok(s.mt)] - logp[s.index][tok(s.wt)] for s in subs)))
    return scores


def read_wild_type(value: str) -> str:
    """``--sequence``: a FASTA file with one record, or the sequence itself."""
    from maskzoo.protein.fasta import read_fasta

    p = Path(value)
    if p.suffix.lower() in {".fa", ".fasta", ".faa", ".fas"} or p.is_file():
        records = read_fasta(p)
        if len(records) != 1:
            raise UserError(f"{p}: expected exactly one wild-type record, found {len(records)}")
        return records[0].seq
    return get_alphabet().validate(value, "--sequence")


def score_csv(
    model: torch.nn.Module,
    wild_type: str,
    variants: str | Path,
    out: str | Path | None,
    mutant_col: str = "mutant",
    score_col: str = "score",
    offset_idx: int = 1,
    batch_size: int = 16,
) -> list[dict[str, str]]:
    """Read ``variants`` (CSV/TSV by extension), add ``score_col``, write ``out`` atomically (``None``: stdout).

    Every input column is kept in its original order; ``score_col`` is appended.
    """
    import sys

    path = Path(variants)
    if not path.is_file():
        raise UserError(f"{path}: no such variants file")
    delimiter = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if not fields:
        raise UserError(f"{path}: empty variants file (no header)")
    if mutant_col not in fields:
        raise UserError(
            f"{path}: no column {mutant_col!r} (columns: {', '.join(fields)}); use --mutation-col"
        )
    if score_col in fields:
        raise UserError(f"{path}: already has a column {score_col!r}; choose another with --score-col")
    if not rows:
        raise UserError(f"{path}: no variants (header only)")
    for n, row in enumerate(rows, start=2):
        if None in row:
            raise UserError(f"{path}: row {n} has more fields than the header")
        if row.get(mutant_col) is None:
            raise UserError(f"{path}: row {n} has no {mutant_col!r} value")
    scores = score_mutants(model, wild_type, [r[mutant_col] for r in rows], offset_idx, batch_size)
    for r, s in zip(rows, scores):
        r[score_col] = f"{s:.6f}"
    out_fields = fields + [score_col]

    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=out_fields, delimiter=delimiter, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    if out is None or str(out) == "-":
        write(sys.stdout)
    else:
        with atomic_open(out, "w") as f:
            write(f)
    return rows
