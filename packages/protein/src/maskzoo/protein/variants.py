"""Zero-shot variant-effect scores of a DSM / ESM-2 model; higher = predicted fitter. One function per method:

``masked-marginal`` (Meier et al. 2021, "Language models enable zero-shot prediction of the effects of mutations
on protein function", NeurIPS; ESM-1v's "masked-marginals"): mask each mutated position alone in the wild type x:

    s = sum_{i in sites} log p(x_i = mt_i | x_{-i}) - log p(x_i = wt_i | x_{-i})

one forward pass per distinct mutated position.

``wt-marginal`` (Meier et al. 2021, "wild-type marginals"): one forward pass of the unmasked wild type and
``s = sum_i log p(mt_i | x) - log p(wt_i | x)`` read at the sites; the cheapest (one pass for the whole scan).

``elbo-diff``: the likelihood ratio log p(mutant) - log p(wild type) with each log-likelihood replaced by its DSM
ELBO (Hallee et al. 2025, arXiv:2506.08293; the same idea as DeepSequence's ELBO difference, Riesselman et al.
2018, Nature Methods): ``s = NELBO(wt) - NELBO(mt)`` in nats, estimated with ``samples`` masks per sequence
(``maskzoo.protein.scoring``). Wild type and mutants share the same masks (common random numbers), so the
Monte Carlo noise of the difference is far smaller than that of either ELBO. Costs ``samples`` passes per variant.

A multi-mutant ``A24C:G30T`` sums its sites for the marginal methods; ``elbo-diff`` scores the full mutant
sequence. Position numbering: a mutant position ``p`` refers to ``sequence[p - offset_idx]`` (0-based); the
default ``offset_idx = 1`` is the usual 1-based numbering.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
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


def _check_context(model: torch.nn.Module, n: int) -> None:
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    if limit is not None and n + 2 > limit:
        raise UserError(f"wild-type sequence of {n} residues is longer than the model's context ({limit - 2} residues)")


@torch.no_grad()
def masked_marginals(
    model: torch.nn.Module, wild_type: str, positions: list[int], batch_size: int = 16
) -> dict[int, torch.Tensor]:
    """``{i: log p(. | x_{-i}) [V]}`` for each 0-based position ``i``, masking one position per row."""
    alphabet = get_alphabet()
    ids = alphabet.encode(wild_type)  # [n + 2]
    _check_context(model, len(wild_type))
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


def _site_log_odds(logp: dict[int, torch.Tensor], subs: list[Substitution]) -> float:
    tok = get_alphabet().esm.get_idx
    return float(sum(logp[s.index][tok(s.mt)] - logp[s.index][tok(s.wt)] for s in subs))


def masked_marginal(model: torch.nn.Module, wild_type: str, parsed: list[list[Substitution]],
                    batch_size: int = 16, samples: int = 0, seed: int = 0) -> list[float]:
    """Masked-marginal log-odds, each mutated position masked alone (Meier et al. 2021)."""
    logp = masked_marginals(model, wild_type, [s.index for subs in parsed for s in subs], batch_size)
    return [_site_log_odds(logp, subs) for subs in parsed]


@torch.no_grad()
def wt_marginal(model: torch.nn.Module, wild_type: str, parsed: list[list[Substitution]],
                batch_size: int = 16, samples: int = 0, seed: int = 0) -> list[float]:
    """Wild-type-marginal log-odds from one unmasked pass (Meier et al. 2021)."""
    a = get_alphabet()
    _check_context(model, len(wild_type))
    device = next(model.parameters()).device
    logits = model(a.encode(wild_type).unsqueeze(0).to(device)).float()[0, 1:-1]  # [n, V]
    all_logp = torch.log_softmax(logits, dim=-1).cpu()  # [n, V]
    logp = {s.index: all_logp[s.index] for subs in parsed for s in subs}
    return [_site_log_odds(logp, subs) for subs in parsed]


def elbo_diff(model: torch.nn.Module, wild_type: str, parsed: list[list[Substitution]],
              batch_size: int = 16, samples: int = 8, seed: int = 0) -> list[float]:
    """``NELBO(wt) - NELBO(mt)`` (nats) with the same ``samples`` masks for every sequence (module docstring)."""
    from maskzoo.protein.scoring import elbo_masks, masked_nll_rows, sequence_generator

    a = get_alphabet()
    _check_context(model, len(wild_type))
    n = len(wild_type)
    masks = elbo_masks(n, samples, sequence_generator(wild_type, seed))  # [K, n], shared by all sequences
    weights = n / masks.sum(dim=1).double()  # [K]
    wt = torch.tensor(a.residue_ids(wild_type), dtype=torch.long)  # [n]
    seqs = [wt]
    for subs in parsed:
        mt = wt.clone()
        for s in subs:
            mt[s.index] = a.esm.get_idx(s.mt)
        seqs.append(mt)
    nll = masked_nll_rows(model, seqs, [masks] * len(seqs), max_tokens=batch_size * (n + 2))
    nelbo = [float((weights * x).mean()) for x in nll]
    return [nelbo[0] - v for v in nelbo[1:]]


#: ``--method`` name -> scoring function ``(model, wild_type, parsed, batch_size, samples, seed) -> scores``.
METHODS = {"masked-marginal": masked_marginal, "wt-marginal": wt_marginal, "elbo-diff": elbo_diff}


def score_mutants(
    model: torch.nn.Module,
    wild_type: str,
    mutants: list[str],
    offset_idx: int = 1,
    batch_size: int = 16,
    method: str = "masked-marginal",
    samples: int = 8,
    seed: int = 0,
) -> list[float]:
    """Scores of each mutant string by ``method`` (a key of ``METHODS``); everything is validated first."""
    if method not in METHODS:
        raise UserError(f"unknown variant scoring method {method!r} (known: {', '.join(METHODS)})")
    if batch_size < 1 or samples < 1:
        raise UserError(f"batch_size and samples must be >= 1, got {batch_size} and {samples}")
    wild_type = get_alphabet().validate(wild_type, "wild-type sequence")
    parsed = [parse_mutant(m, wild_type, offset_idx) for m in mutants]
    return METHODS[method](model, wild_type, parsed, batch_size, samples, seed)


def read_wild_type(value: str, option: str = "--sequence") -> str:
    """``--sequence``: the sequence itself or a one-record FASTA file (``maskzoo.protein.inputs``)."""
    from maskzoo.protein.inputs import read_sequence_arg

    return read_sequence_arg(value, option)


def score_csv(
    model: torch.nn.Module,
    wild_type: str,
    variants: str | Path,
    out: str | Path | None,
    mutant_col: str = "mutant",
    score_col: str = "score",
    offset_idx: int = 1,
    batch_size: int = 16,
    method: str = "masked-marginal",
    samples: int = 8,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Read ``variants`` (CSV/TSV by extension, ``maskzoo.protein.tables``), append ``score_col`` scored by
    ``method``, write ``out`` atomically (``None`` or ``-``: stdout). Input columns keep their order."""
    from maskzoo.core.fileio import atomic_open
    from maskzoo.protein.tables import read_table

    table = read_table(variants, mutant_col)
    if score_col in table.fields:
        raise UserError(f"{variants}: already has a column {score_col!r}; choose another with --score-col")
    scores = score_mutants(model, wild_type, [r[mutant_col] for r in table.rows], offset_idx, batch_size,
                           method, samples, seed)  # fmt: skip
    for r, s in zip(table.rows, scores):
        r[score_col] = f"{s:.6f}"
    with atomic_open("-" if out is None else out, "w") as f:
        w = csv.DictWriter(f, fieldnames=table.fields + [score_col], delimiter=table.delimiter, lineterminator="\n")
        w.writeheader()
        w.writerows(table.rows)
    return table.rows
