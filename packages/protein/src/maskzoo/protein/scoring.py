"""Per-sequence likelihood scores of a DSM model: the ELBO and the pseudo-log-likelihood, in bits per residue.

ELBO (an upper bound on -log p_theta(x)). For a chain of n residues, masked diffusion with any schedule has the
continuous-time bound (MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024; the DSM training objective, Hallee et al.
2025, arXiv:2506.08293), which integrates in closed form over t to a sum over the number m of masked residues
(LLaDA, Nie et al. 2025, eq. 6):

    NELBO(x) = sum_{m=1}^{n} E_{|M| = m} [ c(M) / m ],      c(M) = sum_{i in M} -log p_theta(x_i | x with M masked)
             = E_{m ~ U{1..n}} E_{|M| = m} [ (n / m) c(M) ].

``--samples K`` draws ``m_k = floor(u_k n) + 1`` with low-discrepancy ``u_k = (u_0 + k / K) mod 1`` (one uniform
``u_0`` per sequence: every stratum of the count is hit once, antithetic-style), then a uniform subset of ``m_k``
residues; the estimate is ``(1/K) sum_k (n / m_k) c(M_k)``, unbiased, and exact when ``K`` is a multiple of ``n`` and
the model's conditionals depend on the mask only through its size. The figure reported is
``NELBO / (n ln 2)`` bits per residue; ``2 ** bits`` bounds the perplexity.

Pseudo-log-likelihood (Salazar et al. 2020, "Masked Language Model Scoring", ACL; Wang & Cho 2019):
``PLL(x) = sum_i log p_theta(x_i | x_{-i})``, one pass per residue with that residue masked alone; reported as
``-PLL / (n ln 2)`` bits per residue. It is not a bound on anything, but it is deterministic and common for ESM.

Reproducibility and batching: the draws of a sequence come from a generator seeded by ``(seed, sha256(sequence))``,
so a sequence's score is a function of the model, the sequence, ``samples`` and ``seed`` alone: the same whatever
else is in the file or in its batch. Model rows are grouped into token-budget batches (``count x longest <=
max_tokens``) of similar lengths.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.batching import token_budget_batches

LN2 = math.log(2.0)


@dataclass(frozen=True)
class SequenceScore:
    """Scores of one chain: ELBO bits per residue (upper bound on NLL) and, when asked, PLL bits per residue."""

    id: str
    length: int
    bits_per_residue: float
    pll_bits_per_residue: float | None = None


def sequence_generator(seq: str, seed: int) -> torch.Generator:
    """The generator of ``seq``'s Monte Carlo draws: seeded by ``seed`` and the sequence's SHA-256."""
    digest = hashlib.sha256(f"{seed}:{seq}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") % (2**63))


def stratified_counts(n: int, samples: int, g: torch.Generator) -> torch.Tensor:
    """``m_k = floor(u_k n) + 1`` with ``u_k = (u_0 + k / K) mod 1``: K masked-residue counts in {1..n} -> [K]."""
    u0 = torch.rand((), generator=g, dtype=torch.float64)
    u = torch.remainder(u0 + torch.arange(samples, dtype=torch.float64) / samples, 1.0)  # [K]
    return torch.clamp((u * n).floor().long() + 1, max=n)  # [K]


def elbo_masks(n: int, samples: int, g: torch.Generator) -> torch.Tensor:
    """K masks [K, n] (True = masked), the k-th a uniform subset of ``stratified_counts`` size."""
    counts = stratified_counts(n, samples, g)  # [K]
    ranks = torch.rand(samples, n, generator=g).argsort(dim=1).argsort(dim=1)  # [K, n] a random permutation
    return ranks < counts[:, None]  # [K, n]


def single_site_masks(n: int) -> torch.Tensor:
    """n masks [n, n]: row i masks residue i alone (the pseudo-log-likelihood passes)."""
    return torch.eye(n, dtype=torch.bool)


@torch.no_grad()
def masked_nll_rows(
    model: torch.nn.Module,
    residues: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    max_tokens: int = 8192,
    quiet: bool | None = None,
) -> list[torch.Tensor]:
    """For sequence j (residue ids [n_j]) and its masks [K_j, n_j]: the summed NLL (nats) of the masked residues
    of every row, -> one float64 tensor [K_j] per sequence. Rows of all sequences are batched by token budget."""
    from maskzoo.core.progress import progress

    a = get_alphabet()
    device = next(model.parameters()).device
    rows = [(j, k) for j, m in enumerate(masks) for k in range(m.shape[0])]
    lengths = [len(residues[j]) + 2 for j, _ in rows]
    out = [torch.zeros(m.shape[0], dtype=torch.float64) for m in masks]
    bar = progress(total=sum(lengths), desc="scoring", unit="tok", unit_scale=True, quiet=quiet)
    for batch in token_budget_batches(lengths, max_tokens):
        L = max(lengths[r] for r in batch)
        x0 = torch.full((len(batch), L), a.pad_id, dtype=torch.long)  # [b, L]
        masked = torch.zeros((len(batch), L), dtype=torch.bool)  # [b, L]
        for b, r in enumerate(batch):
            j, k = rows[r]
            n = len(residues[j])
            x0[b, 0], x0[b, 1 : n + 1], x0[b, n + 1] = a.cls_id, residues[j], a.eos_id
            masked[b, 1 : n + 1] = masks[j][k]
        xt = x0.masked_fill(masked, a.mask_id).to(device)  # [b, L]
        logits = model(xt, (x0 != a.pad_id).long().to(device)).float()  # [b, L, V]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, x0.to(device)[..., None]).squeeze(-1)  # [b, L]
        nll = -(logp.double() * masked.to(device)).sum(dim=-1).cpu()  # [b]
        for b, r in enumerate(batch):
            j, k = rows[r]
            out[j][k] = nll[b]
        bar.update(sum(lengths[r] for r in batch))
    bar.close()
    return out


def _check_inputs(model: torch.nn.Module, seqs: Sequence[str], ids: Sequence[str]) -> list[torch.Tensor]:
    a = get_alphabet()
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    encoded = []
    for name, s in zip(ids, seqs):
        r = torch.tensor(a.residue_ids(s, f"record '{name}'"), dtype=torch.long)  # [n]
        if limit is not None and len(r) + 2 > limit:
            raise UserError(
                f"record '{name}' has {len(r)} residues, longer than the model's context ({limit - 2}); "
                "split it into windows first"
            )
        encoded.append(r)
    return encoded


def score_sequences(
    model: torch.nn.Module,
    seqs: Sequence[str],
    ids: Sequence[str] | None = None,
    *,
    samples: int = 16,
    pll: bool = False,
    max_tokens: int = 8192,
    seed: int = 0,
    quiet: bool | None = None,
) -> list[SequenceScore]:
    """ELBO (and optionally PLL) bits per residue of every sequence (see the module docstring).

    Args:
        model: an ESM-2/DSM model in eval mode (``model(ids [B, L], attention_mask) -> logits [B, L, 33]``).
        seqs: residue strings (validated; lower case accepted).
        ids: names for messages and the result (default ``seq0, seq1, ...``).
        samples: Monte Carlo draws K per sequence (model rows per sequence).
        pll: also compute the pseudo-log-likelihood (n extra rows per sequence).
        max_tokens: token budget per forward pass.
        seed: seed of every sequence's draws.
    """
    if samples < 1:
        raise UserError(f"samples must be >= 1, got {samples}")
    if max_tokens < 1:
        raise UserError(f"max_tokens must be >= 1, got {max_tokens}")
    ids = list(ids) if ids is not None else [f"seq{i}" for i in range(len(seqs))]
    if len(ids) != len(seqs):
        raise UserError(f"{len(ids)} ids for {len(seqs)} sequences")
    residues = _check_inputs(model, seqs, ids)
    masks = [elbo_masks(len(r), samples, sequence_generator(s, seed)) for r, s in zip(residues, seqs)]
    nll = masked_nll_rows(model, residues, masks, max_tokens, quiet)
    pll_nll = masked_nll_rows(model, residues, [single_site_masks(len(r)) for r in residues], max_tokens, quiet) \
        if pll else None  # fmt: skip
    out = []
    for j, (r, m) in enumerate(zip(residues, masks)):
        n = len(r)
        nelbo = float((n / m.sum(dim=1).double() * nll[j]).mean())  # nats
        pll_bits = float(pll_nll[j].sum()) / (n * LN2) if pll_nll is not None else None
        out.append(SequenceScore(ids[j], n, nelbo / (n * LN2), pll_bits))
    return out
