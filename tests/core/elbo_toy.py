"""A tiny distribution with exactly known conditionals, for testing losses and likelihood estimators.

A joint ``p`` over all 27 sequences of length 3 on the vocabulary {0, 1, 2}; id 3 is the mask. The oracle
denoiser returns, for every position of ``x_t``, the exact posterior ``p(x_0^i | visible tokens of x_t)``
computed by enumeration; ``smoothing`` mixes it with the uniform distribution to get a model that is not
the data distribution. ``analytic_nelbo`` enumerates all masks and uses the Beta integral
``int_0^1 -alpha' (1-alpha)^(m-1) alpha^(n-m) dt = (m-1)! (n-m)! / n!``.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch

V, L, MASK = 3, 3, 3
ALL = torch.tensor(list(itertools.product(range(V), repeat=L)))  # [27, 3]




def toy_joint(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(1.5 * torch.randn(len(ALL), generator=g, dtype=torch.float64), 0)  # [27]


class Oracle:
    """``model(input_ids=[B, 3]) -> logits [B, 3, 4]`` (the mask class gets -inf)."""

    def __init__(self, probs: torch.Tensor, smoothing: float = 0.0):
        self.probs, self.smoothing = probs, smoothing
        self.onehot = torch.nn.functional.one_hot(ALL, V).double()  # [27, 3, V]
        self.calls = 0

    def posterior(self, xt: torch.Tensor) -> torch.Tensor:
        consistent = ((ALL[None] == xt[:, None]) | (xt[:, None] == MASK)).all(-1)  # [B, 27]
        w = self.probs[None] * consistent  # [B, 27]
        post = torch.einsum("bs,slv->blv", w, self.onehot) / w.sum(-1)[:, None, None]  # [B, 3, V]
        return (1 - self.smoothing) * post + self.smoothing / V

    def __call__(self, input_ids: torch.Tensor, attention_mask=None) -> torch.Tensor:
        self.calls += 1
        post = self.posterior(input_ids)
        logits = torch.cat([post.log(), torch.full_like(post[..., :1], -math.inf)], -1)  # [B, 3, V+1]
        return logits.float()


def subsets(positions):
    for m in range(1, len(positions) + 1):
        yield from itertools.combinations(positions, m)


def mask_cost(oracle: Oracle, x: torch.Tensor, masked) -> float:
    """c(M) = sum_{i in M} -log p(x_i | x with M masked)."""
    xt = x.clone()
    xt[list(masked)] = MASK
    post = oracle.posterior(xt[None])[0]  # [3, V]
    return float(sum(-post[i, x[i]].log() for i in masked))


def analytic_nelbo(oracle: Oracle, x: torch.Tensor, positions=range(L)) -> float:
    """Exact continuous-time NELBO (nats) of ``x`` over the given maskable positions."""
    n = len(positions)
    return sum(
        mask_cost(oracle, x, M) * math.factorial(len(M) - 1) * math.factorial(n - len(M)) / math.factorial(n)
        for M in subsets(list(positions))
    )


@functools.cache
def _leggauss(nodes: int):
    return np.polynomial.legendre.leggauss(nodes)


def quadrature_nelbo(oracle: Oracle, x: torch.Tensor, schedule, t_lo: float = 0.0, nodes: int = 200) -> float:
    """``int_{t_lo}^1 w(t) sum_M (1-alpha)^m alpha^(L-m) c(M) dt`` by Gauss-Legendre on the schedule's own
    functions (float64)."""
    z, wq = _leggauss(nodes)
    t = torch.tensor(t_lo + (1 - t_lo) * (z + 1) / 2, dtype=torch.float64)
    wq = torch.tensor(wq * (1 - t_lo) / 2, dtype=torch.float64)
    a = schedule.alpha(t)
    integrand = torch.zeros_like(t)
    for M in subsets(list(range(L))):
        integrand += (1 - a) ** len(M) * a ** (L - len(M)) * mask_cost(oracle, x, M)
    return float((wq * schedule.weight(t) * integrand).sum())


def generative_nll(oracle: Oracle, x: torch.Tensor) -> float:
    """-log of the probability that the model's one-token-at-a-time random-order sampler produces ``x``."""
    total = 0.0
    for order in itertools.permutations(range(L)):
        xt = torch.full_like(x, MASK)
        prob = 1.0
        for i in order:
            prob *= float(oracle.posterior(xt[None])[0, i, x[i]])
            xt[i] = x[i]
        total += prob / math.factorial(L)
    return -math.log(total)


def sample_data(probs: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return ALL[torch.multinomial(probs, n, replacement=True, generator=g)]  # [n, 3]
