"""Likelihood evaluation: Monte Carlo estimates of the masked-diffusion NELBO, in bits per token.

For a sequence ``x`` with ``n`` maskable positions, the continuous-time NELBO (MDLM, Sahoo et al. 2024;
MD4, Shi et al. 2024) is, for any schedule with ``alpha(0) = 1``, ``alpha(1) = 0``,

    NELBO(x) = int_0^1 w(t) E_{M ~ q_t} [ c(M) ] dt,   c(M) = sum_{i in M} -log p_theta(x^i | x with M masked)
             = sum_{m=1}^{n} E_{|M| = m} [ c(M) / m ]                                          (1)
             = E_{m ~ U{1..n}} E_{|M| = m} [ (n / m) c(M) ],                                    (2)

since ``int_0^1 -alpha' (1-alpha)^(m-1) alpha^(n-m) dt = (m-1)! (n-m)! / n!`` for every such schedule. It
bounds the model's negative log-likelihood from above; positions that are not maskable are conditioned on.

Two unbiased estimators, both with antithetic (stratified) variance reduction:

- ``schedule=None`` (default, recommended): form (2), LLaDA's likelihood estimator (Nie et al. 2025, eq. 6):
  draw the number of masked tokens ``m``, mask a uniform subset of that size, weight by ``n / m``. Its
  variance is finite and it does not depend on a schedule.
- ``schedule=S``: the time form, exactly the MDLM/MD4 training objective: ``t ~ U(0, 1)``, mask each token with
  probability ``1 - alpha(t)``, weight ``-alpha'(t) / (1 - alpha(t))``. Its expectation is the same number
  (up to ``alpha(1) > 0`` for the log-linear schedule), but for schedules with ``alpha'(0) != 0`` (linear,
  cosine, log-linear) its variance diverges logarithmically near ``t = 0``; polynomial ``k >= 2`` is fine.

Variance reduction and error bars: the ``num_samples = K`` draws of each sequence are split into
``num_groups = G`` independent groups of ``K / G`` stratified draws (``u_s = (u_0 + s G / K) mod 1``, one
``u_0 ~ U(0, 1)`` per group), so every draw is marginally uniform and each group hits every stratum once.
Because groups are independent, ``Var(sum_b NELBO_b)`` is estimated without bias by
``sum_b var_g(group means of b) / G``; its square root, in bits per token, is the returned standard error
(NaN when ``G = 1``). With ``antithetic=False`` all ``K`` draws are i.i.d. (``G = K``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from maskzoo.core.errors import UserError
from maskzoo.core.losses import masked_token_ce, model_logits, modelled_positions
from maskzoo.core.masking import mask_random_subset, mask_tokens
from maskzoo.core.schedules import Schedule

LN2 = math.log(2.0)


class BitsEstimate(NamedTuple):
    """A per-token likelihood figure in bits and the standard error of its Monte Carlo estimate."""

    bits_per_token: float
    stderr: float


def _stratified_uniforms(
    n: int, num_samples: int, num_groups: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``[n, G, K/G]`` uniforms: each group ``(b, g)`` is ``(u_0 + s / (K/G)) mod 1`` with its own ``u_0``."""
    size = num_samples // num_groups
    u0 = torch.rand(n, num_groups, 1, generator=generator, device=device, dtype=torch.float64)  # [N, G, 1]
    strata = torch.arange(size, device=device, dtype=torch.float64) / size  # [S]
    return torch.remainder(u0 + strata, 1.0)  # [N, G, S]


@torch.no_grad()
def nelbo_samples(
    model: Callable,
    ids: Tensor,
    mask_id: int,
    schedule: Schedule | None = None,
    num_samples: int = 8,
    antithetic: bool = True,
    maskable: Tensor | None = None,
    *,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    num_groups: int = 2,
) -> tuple[Tensor, Tensor]:
    """Unbiased single-draw NELBO estimates (nats) of every sequence.

    Returns ``(samples [N, G, K/G] float64, num_tokens [N] long)``: ``samples[b].mean()`` estimates
    ``NELBO(ids[b])``; ``num_tokens[b]`` is its number of maskable tokens. Arguments as in
    ``elbo_bits_per_token``. The model is called as ``model(input_ids=..., attention_mask=...)`` in its
    current mode (call ``model.eval()`` first if it uses dropout).
    """
    if ids.dim() != 2:
        raise UserError(f"ids must have shape [N, L], got {tuple(ids.shape)}")
    if num_samples < 1 or batch_size < 1:
        raise UserError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
    groups = num_groups if antithetic else num_samples
    if groups < 1 or num_samples % groups:
        raise UserError(f"num_samples ({num_samples}) must be a multiple of num_groups ({groups})")
    device = ids.device
    allowed = modelled_positions(ids, maskable, attention_mask)  # [N, L]
    num_tokens = allowed.sum(dim=-1)  # [N]

    n_seq = ids.shape[0]
    u = _stratified_uniforms(n_seq, num_samples, groups, generator, device)  # [N, G, S]
    flat_u = u.reshape(-1)  # [N*K]
    row_of = torch.arange(n_seq, device=device).repeat_interleave(num_samples)  # [N*K]
    keep = (num_tokens[row_of] > 0).nonzero().squeeze(-1)  # evaluations that model something
    estimates = torch.zeros(n_seq * num_samples, dtype=torch.float64, device=device)  # [N*K]

    for start in range(0, keep.numel(), batch_size):
        idx = keep[start : start + batch_size]  # [C]
        rows = row_of[idx]  # [C]
        x0, allow_c, uc, n_c = ids[rows], allowed[rows], flat_u[idx], num_tokens[rows]  # [C, L], [C]
        if schedule is None:
            m = torch.minimum((uc * n_c).floor().long() + 1, n_c)  # [C], uniform on {1..n}
            xt, is_masked = mask_random_subset(x0, m, mask_id, allow_c, generator)
            weight = n_c.double() / m.double()  # [C]
        else:
            t = uc.to(torch.float64)  # [C]
            xt, is_masked = mask_tokens(x0, schedule.mask_prob(t), mask_id, allow_c, generator)
            weight = schedule.weight(t)  # [C]
        am = attention_mask[rows] if attention_mask is not None else None
        logits = model_logits(model, xt, am)  # [C, L, V]
        ce = masked_token_ce(logits, x0, is_masked).double().sum(dim=-1)  # [C]
        estimates[idx] = torch.where(is_masked.any(dim=-1), weight * ce, torch.zeros_like(ce))
    return estimates.view_as(u), num_tokens


def elbo_bits_per_token(
    model: Callable,
    ids: Tensor,
    mask_id: int,
    schedule: Schedule | None = None,
    num_samples: int = 8,
    antithetic: bool = True,
    maskable: Tensor | None = None,
    *,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    num_groups: int = 2,
) -> BitsEstimate:
    """NELBO of a set of sequences in bits per maskable token, with its Monte Carlo standard error.

    ``bits = sum_b NELBO(ids_b) / (ln 2 * sum_b n_b)``: the per-token average over the whole set (how bits per
    character are reported), an upper bound on the model's NLL per token.

    Args:
        model: callable ``model(input_ids=[C, L], attention_mask=...) -> logits [C, L, V]`` (or ``.logits``).
        ids: ``[N, L]`` clean sequences.
        mask_id: the model's mask token id.
        schedule: ``None`` for the count estimator (2) (recommended); a ``Schedule`` for the time estimator.
        num_samples: draws per sequence ``K`` (model calls = ``N * K / batch_size``).
        antithetic: stratify the draws of each group (see module docstring); ``False`` draws them i.i.d.
        maskable: ``[N, L]`` bool; ``False`` positions are conditioned on and not counted (e.g. a prompt).
        attention_mask: ``[N, L]``; 0 marks padding (not counted, passed to the model).
        generator: RNG for the draws (on ``ids.device``); ``None`` uses the global RNG.
        batch_size: rows per model call.
        num_groups: independent groups ``G`` per sequence (``K`` must be a multiple); ``G >= 2`` for an error
            bar. Raise it when evaluating very few sequences, so the error estimate has more degrees of freedom.

    Returns:
        ``BitsEstimate(bits_per_token, stderr)``.
    """
    samples, num_tokens = nelbo_samples(
        model, ids, mask_id, schedule, num_samples, antithetic, maskable,
        attention_mask=attention_mask, generator=generator, batch_size=batch_size, num_groups=num_groups,
    )  # fmt: skip
    total_tokens = int(num_tokens.sum())
    if total_tokens == 0:
        raise UserError("no maskable tokens to evaluate")
    group_means = samples.mean(dim=-1)  # [N, G]
    total = group_means.mean(dim=-1).sum()  # nats
    n_groups = group_means.shape[1]
    if n_groups >= 2:
        var_total = (group_means.var(dim=-1, unbiased=True) / n_groups).sum()
        stderr = float(var_total.sqrt()) / (total_tokens * LN2)
    else:
        stderr = float("nan")
    return BitsEstimate(float(total) / (total_tokens * LN2), stderr)


@torch.no_grad()
def ar_bits_per_token(
    model: Callable,
    ids: Tensor,
    *,
    attention_mask: Tensor | None = None,
    maskable: Tensor | None = None,
    batch_size: int = 64,
) -> BitsEstimate:
    """Exact NLL of a causal model in bits per predicted token (position ``i`` predicts token ``i + 1``; the
    first token of each row is not predicted); ``stderr`` is 0. Scored targets: real (``attention_mask``)
    and, if given, ``maskable`` tokens -- the same tokens ``ARLoss`` trains on."""
    allowed = modelled_positions(ids, maskable, attention_mask)  # [N, L]
    total, count = 0.0, 0
    for start in range(0, ids.shape[0], batch_size):
        x = ids[start : start + batch_size]  # [C, L]
        am = attention_mask[start : start + batch_size] if attention_mask is not None else None
        scored = allowed[start : start + batch_size, 1:]  # [C, L-1]
        logits = model_logits(model, x, am)  # [C, L, V]
        total += float(masked_token_ce(logits[:, :-1], x[:, 1:], scored).double().sum())
        count += int(scored.sum())
    if count == 0:
        raise UserError("no tokens to score")
    return BitsEstimate(total / (count * LN2), 0.0)
