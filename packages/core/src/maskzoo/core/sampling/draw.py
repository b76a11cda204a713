"""How to draw a token from the denoiser's logits: greedy, temperature (float64 Gumbel-max), top-k, top-p.

With temperature ``T > 0`` a token is drawn by the Gumbel-max trick for ``softmax(l / T)``:

    x0 = argmax_v  l_v / T - log(-log u_v),        u_v ~ U(0, 1) in float64.

LLaDA's reference sampler computes ``argmax_v exp(l_v) / (-log u_v)^T``, whose log is ``T * (l_v / T + g_v)`` with
``g_v = -log(-log u_v)`` a standard Gumbel variable: the same argmax for the same ``u``. The log form is used here
because ``exp(l_v)`` overflows float64 for logits above ~709 (every such token would tie at ``inf``). Zheng et al. 2024
("Masked diffusion models are secretly time-agnostic masked models and exploit inaccurate categorical sampling",
arXiv 2409.02908) show that Gumbel-max in low precision truncates the noise and lowers the effective temperature,
hence float64.

Top-k keeps the ``k`` largest logits; top-p (nucleus, Holtzman et al. 2020) keeps the smallest set of tokens, in
decreasing probability under ``softmax(l / T)``, whose mass reaches ``p``. Both set the other logits to ``-inf``
before the draw and do nothing at ``T = 0`` (the argmax is always kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """``logits`` [..., V] with all but the ``k`` largest entries per row set to ``-inf`` (ties at the k-th kept)."""
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # [..., 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float, temperature: float = 1.0) -> Tensor:
    """``logits`` [..., V] restricted to the nucleus of ``softmax(logits / temperature)`` of mass ``p``.

    A token is kept when the probability mass of the tokens ranked strictly above it is below ``p``; the most likely
    token is always kept.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # [..., V]
    probs = torch.softmax(sorted_logits.float() / temperature, dim=-1)  # [..., V]
    mass_before = probs.cumsum(-1) - probs  # [..., V]
    drop_sorted = mass_before >= p  # [..., V]
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # [..., V] back in vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def forbid_token(logits: Tensor, token_id: int) -> Tensor:
    """``logits`` [..., V] with column ``token_id`` set to ``-inf`` (a new tensor): that token is never drawn.

    The ancestral and first-hitting samplers draw the token of every revealed position from p(x0 | x_t), which for
    an absorbing-state model has no mass on the mask token (MDLM's "zero masking probabilities"); an imperfect
    model's mass there is removed so that a revealed position is never left masked.
    """
    return logits.index_fill(-1, torch.tensor([token_id], device=logits.device), float("-inf"))


def gumbel_argmax(logits: Tensor, temperature: float, generator: torch.Generator | None = None) -> Tensor:
    """float64 Gumbel-max draw from ``softmax(logits / temperature)`` in log form; ``logits`` [..., V] -> ids [...].

    ``-inf`` logits (filtered or suppressed tokens) are never drawn while any finite logit is left.
    """
    logits64 = logits.to(torch.float64)  # [..., V]
    u = torch.rand(logits64.shape, dtype=torch.float64, device=logits.device, generator=generator)  # [..., V]
    gumbel = -torch.log(-torch.log(u))  # [..., V] standard Gumbel (u = 0 gives -inf, never drawn)
    return torch.argmax(logits64 / temperature + gumbel, dim=-1)  # [...]


@dataclass(frozen=True)
class TokenDraw:
    """A token-drawing rule: ``draw(logits [..., V]) -> ids [...]``.

    ``temperature == 0`` is greedy (``argmax``, ties to the first index as ``torch.argmax``).
    """

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    generator: torch.Generator | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def filter(self, logits: Tensor) -> Tensor:
        """Apply top-k then top-p to ``logits`` [..., V] (only when sampling)."""
        if self.greedy:
            return logits
        if self.top_k is not None:
            logits = top_k_filter(logits, self.top_k)
        if self.top_p is not None:
            logits = top_p_filter(logits, self.top_p, self.temperature)
        return logits

    def __call__(self, logits: Tensor) -> Tensor:
        """Draw one token id per position of ``logits`` [..., V] -> [...] int64."""
        if self.greedy:
            return torch.argmax(logits, dim=-1)
        return gumbel_argmax(self.filter(logits), self.temperature, self.generator)
