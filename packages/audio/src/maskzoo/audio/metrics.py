"""Word and character error rates from torchaudio's Levenshtein distance (no hand-written metric).

    WER = sum_i edit(hyp_i words, ref_i words) / sum_i |ref_i words|       CER likewise over characters
"""

from __future__ import annotations

from collections.abc import Sequence


def error_rate(hyps: Sequence[Sequence], refs: Sequence[Sequence]) -> float:
    """Corpus error rate: total edit distance over total reference length (sequences of any tokens)."""
    from torchaudio.functional import edit_distance

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    errors = sum(edit_distance(list(r), list(h)) for h, r in zip(hyps, refs))
    return errors / max(1, sum(len(r) for r in refs))


def wer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    return error_rate([h.split() for h in hyps], [r.split() for r in refs])


def cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    return error_rate([list(h) for h in hyps], [list(r) for r in refs])
