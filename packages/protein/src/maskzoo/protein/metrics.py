"""Metrics that compare a set of generated proteins with natural ones.

* **k-mer Jensen-Shannon divergence** (k = 1, 2, 3) between the pooled k-mer frequencies P (generated) and Q
  (natural), in bits (base 2, so 0 <= JSD <= 1):  JSD = H((P + Q) / 2) - (H(P) + H(Q)) / 2. k-mers with a
  non-canonical letter are skipped. DSM reports amino-acid k-mer JSDs in the same way (Hallee et al. 2025).
  A finite sample has a positive JSD even from the true distribution, so :func:`natural_crops` gives the yardstick:
  natural windows of the same lengths and count, scored against the same reference.
* **identity** (:func:`identity`): an overlap alignment (end gaps free; match +2, mismatch -1, gap -2) and
  ``identical aligned pairs / length of the shorter sequence``. **Diversity** = mean pairwise identity inside the
  set (lower = more diverse); **novelty** = 1 - identity to the nearest training sequence, found among the
  candidates sharing the most 3-mers (a k-mer prefilter, as MMseqs2 does, Steinegger & Soeding 2017).
* **validity**: only canonical residues and a non-empty sequence.
* **low complexity**: fraction of residues covered by 12-residue windows of Shannon entropy < 2.2 bits (SEG's
  trigger window and threshold, Wootton & Federhen 1993); a sequence counts as low-complexity above 20%.
* **homopolymers**: the longest run of one residue; rate of sequences with a run >= 5.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from maskzoo.protein.alphabet import CANONICAL

_CODE = np.full(256, -1, dtype=np.int64)
for _i, _a in enumerate(CANONICAL):
    _CODE[ord(_a)] = _i


def encode(seq: str) -> np.ndarray:
    """Residue codes 0..19 (-1 for a non-canonical letter)."""
    return _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


# ------------------------------------------------------------------------------------------------ composition


def _concat_codes(seqs: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """k-mer codes (base 20) of all windows of all sequences, and the sequence index of each; windows with a
    non-canonical letter or across a sequence boundary are dropped."""
    if not seqs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    joined = encode("".join(s + "*" for s in seqs))  # '*' -> -1 separates sequences
    owner = np.repeat(np.arange(len(seqs)), [len(s) + 1 for s in seqs])
    if len(joined) < k:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(joined, k)  # [N, k]
    ok = (windows >= 0).all(1)
    codes = windows[ok] @ (20 ** np.arange(k - 1, -1, -1))
    return codes, owner[: len(windows)][ok]


def kmer_counts(seqs: Sequence[str], k: int) -> np.ndarray:
    """Pooled counts of the 20^k canonical k-mers over ``seqs``."""
    return np.bincount(_concat_codes(seqs, k)[0], minlength=20**k).astype(np.int64)


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def jsd(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) between two count vectors."""
    p = p_counts / max(1, p_counts.sum())
    q = q_counts / max(1, q_counts.sum())
    return _entropy_bits((p + q) / 2) - (_entropy_bits(p) + _entropy_bits(q)) / 2


def kmer_jsd(generated: Sequence[str], reference: Sequence[str], k: int) -> float:
    return jsd(kmer_counts(generated, k), kmer_counts(reference, k))


def natural_crops(pool: Sequence[str], lengths: Sequence[int], seed: int = 0) -> list[str]:
    """One random window of each length from a random pool chain at least that long."""
    rng = random.Random(seed)
    by_len = sorted(pool, key=len)
    sizes = [len(s) for s in by_len]
    out = []
    for n in lengths:
        import bisect

        lo = bisect.bisect_left(sizes, n)
        if lo == len(by_len):
            raise ValueError(f"no natural chain of length >= {n}")
        s = by_len[rng.randrange(lo, len(by_len))]
        start = rng.randint(0, len(s) - n)
        out.append(s[start : start + n])
    return out


# ------------------------------------------------------------------------------------------------ sequences


def is_valid(seq: str) -> bool:
    return bool(seq) and all(a in CANONICAL for a in seq)


def longest_run(seq: str) -> int:
    best = run = 0
    prev = ""
    for a in seq:
        run = run + 1 if a == prev else 1
        prev = a
        best = max(best, run)
    return best


def low_complexity_fraction(seq: str, window: int = 12, threshold: float = 2.2) -> float:
    """Fraction of residues inside a ``window`` of Shannon entropy below ``threshold`` bits."""
    c = encode(seq)
    n = len(c)
    if n < window:
        return 0.0
    covered = np.zeros(n, dtype=bool)
    for s in range(n - window + 1):
        w = c[s : s + window]
        counts = np.bincount(w[w >= 0], minlength=20)
        if _entropy_bits(counts / max(1, counts.sum())) < threshold:
            covered[s : s + window] = True
    return float(covered.mean())


# ------------------------------------------------------------------------------------------------ identity


def identity(a: str, b: str, match: int = 2, mismatch: int = -1, gap: int = 2) -> float:
    """Identity of the best overlap alignment of ``a`` and ``b`` (end gaps free), over the shorter length.

    Row i of the DP is ``H[i, j] = max(H[i-1, j-1] + s(a_i, b_j), H[i-1, j] - g, H[i, j-1] - g)``; the in-row term
    is a prefix maximum, ``H[i, j] = max_{l <= j} (C[l] + g l) - g j``, so each row is a few numpy operations.
    """
    if not a or not b:
        return 0.0
    A, B = encode(a), encode(b)
    n, m = len(A), len(B)
    S = np.where((A[:, None] == B[None, :]) & (A[:, None] >= 0), match, mismatch).astype(np.int32)  # [n, m]
    H = np.zeros((n + 1, m + 1), dtype=np.int32)
    ramp = gap * np.arange(m + 1, dtype=np.int32)
    for i in range(1, n + 1):
        c = np.empty(m + 1, dtype=np.int32)
        c[0] = 0
        np.maximum(H[i - 1, :-1] + S[i - 1], H[i - 1, 1:] - gap, out=c[1:])
        H[i] = np.maximum.accumulate(c + ramp) - ramp
    # best end: last row or last column (trailing end gaps are free)
    j_best = int(H[n].argmax())
    i_best = int(H[:, m].argmax())
    i, j = (n, j_best) if H[n, j_best] >= H[i_best, m] else (i_best, m)
    same = 0
    while i > 0 and j > 0:
        h = H[i, j]
        if h == H[i - 1, j - 1] + S[i - 1, j - 1]:
            same += int(S[i - 1, j - 1] == match)
            i, j = i - 1, j - 1
        elif h == H[i - 1, j] - gap:
            i -= 1
        else:
            j -= 1
    return same / min(n, m)


def mean_pairwise_identity(seqs: Sequence[str], max_pairs: int = 500, seed: int = 0) -> float:
    """Mean identity over all pairs, or over ``max_pairs`` random pairs."""
    n = len(seqs)
    if n < 2:
        return float("nan")
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    return float(np.mean([identity(seqs[i], seqs[j]) for i, j in pairs]))


class NearestNeighbour:
    """Nearest training sequence by alignment identity, among the top 3-mer-sharing candidates."""

    def __init__(self, train: Sequence[str], candidates: int = 5) -> None:
        self.train = list(train)
        self.candidates = candidates
        self.matrix = self._presence(self.train)  # [N_train, 8000] sparse 0/1

    @staticmethod
    def _presence(seqs: Sequence[str]):
        import torch

        codes, owner = _concat_codes(seqs, 3)
        idx = torch.from_numpy(np.stack([owner, codes]))
        m = torch.sparse_coo_tensor(idx, torch.ones(len(codes)), (len(seqs), 8000), check_invariants=False)
        m = m.coalesce()  # duplicate k-mers summed
        return torch.sparse_coo_tensor(
            m.indices(), m.values().clamp(max=1.0), m.shape, is_coalesced=True, check_invariants=False
        )

    def max_identity(self, queries: Sequence[str]) -> list[float]:
        import torch

        q = self._presence(queries).to_dense().T  # [8000, Q]
        shared = torch.sparse.mm(self.matrix, q)  # [N_train, Q] shared 3-mers
        top = shared.topk(min(self.candidates, len(self.train)), dim=0).indices  # [c, Q]
        from maskzoo.core.progress import progress

        bar = progress(enumerate(queries), total=len(queries), desc="nearest training chains", unit="seq")
        return [max(identity(s, self.train[int(i)]) for i in top[:, j]) for j, s in bar]


# ------------------------------------------------------------------------------------------------ summary


def length_stats(seqs: Sequence[str]) -> dict[str, float]:
    n = np.array([len(s) for s in seqs], dtype=float)
    return {"mean": float(n.mean()), "std": float(n.std()), "min": float(n.min()), "max": float(n.max()),
            "median": float(np.median(n))}  # fmt: skip


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def sequence_stats(seqs: Sequence[str]) -> dict[str, float]:
    """Validity, uniqueness, homopolymer and low-complexity rates of one set."""
    runs = [longest_run(s) for s in seqs]
    lc = [low_complexity_fraction(s) for s in seqs]
    return {
        "count": len(seqs),
        "validity": float(np.mean([is_valid(s) for s in seqs])),
        "unique_fraction": len(set(seqs)) / max(1, len(seqs)),
        "homopolymer_run5_rate": float(np.mean([r >= 5 for r in runs])),
        "longest_run_mean": float(np.mean(runs)),
        "low_complexity_fraction_mean": float(np.mean(lc)),
        "low_complexity_rate": float(np.mean([f > 0.2 for f in lc])),
    }


def compare_sets(
    generated: Sequence[str],
    reference: Sequence[str],
    train: Sequence[str] | None = None,
    seed: int = 0,
    max_pairs: int = 500,
) -> dict:
    """All metrics of ``generated`` against ``reference``, beside natural crops of the same lengths (from
    ``train`` when given, else ``reference``) scored the same way."""
    lengths = [len(s) for s in generated]
    pool = train if train is not None else reference
    crops = natural_crops(pool, lengths, seed)
    out: dict = {"generated": sequence_stats(generated), "natural_crops": sequence_stats(crops)}
    ref_counts = {k: kmer_counts(reference, k) for k in (1, 2, 3)}
    for name, seqs in (("generated", generated), ("natural_crops", crops)):
        for k in (1, 2, 3):
            out[name][f"jsd_{k}mer"] = jsd(kmer_counts(seqs, k), ref_counts[k])
        out[name]["diversity_mean_pairwise_identity"] = mean_pairwise_identity(seqs, max_pairs, seed)
    out["lengths"] = {"generated": length_stats(generated), "reference": length_stats(reference),
                      "ks_statistic": ks_statistic(lengths, [len(s) for s in reference])}  # fmt: skip
    if train is not None:
        nn_ = NearestNeighbour(train)
        ident = nn_.max_identity(list(generated))
        out["generated"]["novelty_mean"] = 1.0 - float(np.mean(ident))
        out["generated"]["nearest_train_identity_max"] = float(np.max(ident))
        out["_nearest_identity"] = ident
    out["targets"] = {
        "jsd_1mer_le_0.005": out["generated"]["jsd_1mer"] <= 0.005,
        "jsd_2mer_within_2x_natural": out["generated"]["jsd_2mer"] <= 2 * out["natural_crops"]["jsd_2mer"],
        "all_unique": out["generated"]["unique_fraction"] == 1.0,
    }
    if math.isnan(out["generated"]["diversity_mean_pairwise_identity"]):
        out["generated"]["diversity_mean_pairwise_identity"] = None
    return out
