"""Which masked positions to reveal: confidence rules and an exact, vectorised per-row top-k.

A confidence rule scores each masked position from the denoiser's logits ``l`` [B, R, V] and the drawn tokens ``x0``
[B, R]; the ``k_b`` highest-scoring masked positions of row ``b`` are revealed (LLaDA, Nie et al. 2025, Sec. 2.4:
"low-confidence remasking" keeps the least confident predictions masked):

- ``probability`` ("low_confidence"): ``p(x0_i)``, the softmax probability of the drawn token (LLaDA).
- ``margin``: ``p_(1) - p_(2)``, the gap between the two most likely tokens (Kim et al. 2025, "Train for the worst,
  plan for the best", arXiv 2502.06768).
- ``entropy``: ``-H(p_i) = sum_v p_v log p_v`` (Dream 7B; Ye et al. 2025): low entropy = confident.
- ``random``: ``U(0, 1)``: reveal uniformly random positions (LLaDA's "random" remasking; with one token per step and
  temperature 1 this samples the model's joint exactly when the model is exact).

The probability rule computes ``softmax`` in the logits' own dtype and gathers it at ``x0``, as the reference does,
so equal confidences stay equal and ``torch.topk`` breaks ties the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ConfidenceRule = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]


def probability_confidence(logits: Tensor, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``p(x0_i)`` under ``softmax(logits)``: logits [B, R, V], x0 [B, R] -> [B, R] (logits dtype)."""
    p = torch.softmax(logits, dim=-1)  # [B, R, V]
    return torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)  # [B, R]


def margin_confidence(logits: Tensor, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``p_(1) - p_(2)``: gap between the two largest probabilities; [B, R, V] -> [B, R]."""
    top2 = torch.topk(torch.softmax(logits.float(), dim=-1), 2, dim=-1).values  # [B, R, 2]
    return top2[..., 0] - top2[..., 1]  # [B, R]


def entropy_confidence(logits: Tensor, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Negative entropy ``sum_v p_v log p_v`` (0 when certain); [B, R, V] -> [B, R]."""
    log_p = torch.log_softmax(logits.float(), dim=-1)  # [B, R, V]
    return (log_p.exp() * log_p).nan_to_num(0.0).sum(-1)  # [B, R]; 0 * -inf terms are 0


def random_confidence(logits: Tensor, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Independent ``U(0, 1)`` scores: [B, R] (float32)."""
    return torch.rand(x0.shape, device=x0.device, generator=generator)  # [B, R]


CONFIDENCE_RULES: dict[str, ConfidenceRule] = {
    "low_confidence": probability_confidence,
    "margin": margin_confidence,
    "entropy": entropy_confidence,
    "random": random_confidence,
}


def topk_per_row(scores: Tensor, counts: list[int]) -> list[tuple[Tensor | None, Tensor]]:
    """Indices of the ``counts[b]`` largest entries of each row of ``scores`` [B, L].

    Returns ``[(rows, idx)]`` groups: ``rows`` [G] (or ``None`` for all rows) and ``idx`` [G, k] with one ``k`` per
    group. Rows that share a count go through one batched ``torch.topk``, which on each row runs the same selection
    as ``torch.topk`` on that row alone, so ties resolve exactly as a per-row loop would. (Taking the first ``k_b``
    of a top-``max k`` would not: with ties, ``topk(k)`` need not be a prefix of ``topk(k')``.) In the usual case all
    rows share one count and this is a single call; rows with count 0 are left out.
    """
    first = counts[0]
    if all(c == first for c in counts):
        return [] if first == 0 else [(None, torch.topk(scores, first, dim=-1).indices)]
    groups: list[tuple[Tensor | None, Tensor]] = []
    for k in sorted(set(counts)):
        if k == 0:
            continue
        rows = torch.tensor([b for b, c in enumerate(counts) if c == k], device=scores.device)  # [G]
        groups.append((rows, torch.topk(scores[rows], k, dim=-1).indices))  # [G, k]
    return groups
