"""ELBO / bits-per-token estimates checked against exact values on a distribution with known conditionals."""

import math

import pytest
import torch
from elbo_toy import (  # noqa: F401
    ALL,
    MASK,
    L,
    Oracle,
    V,
    analytic_nelbo,
    generative_nll,
    quadrature_nelbo,
    sample_data,
    toy_joint,
)

from maskzoo.core.errors import UserError
from maskzoo.core.likelihood import ar_bits_per_token, elbo_bits_per_token, nelbo_samples
from maskzoo.core.schedules import CosineSchedule, LinearSchedule, PolynomialSchedule

LN2 = math.log(2)
PROBS = toy_joint()


def _bits(oracle, ids, positions=range(L)):
    """Exact NELBO of a set of sequences in bits per maskable token."""
    return sum(analytic_nelbo(oracle, x, positions) for x in ids) / (len(ids) * len(positions) * LN2)


@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_nelbo_is_schedule_invariant_and_bounds_the_nll(smoothing):
    """The continuous-time NELBO integral has the same value for every schedule (quadrature of w(t) E[c]
    with each schedule's own alpha and weight = the closed form), equals -log p(x) for the exact conditionals
    and is never below the model's own NLL (-log of its random-order sampler's probability)."""
    oracle = Oracle(PROBS, smoothing)
    for x, p in zip(ALL, PROBS):
        closed = analytic_nelbo(oracle, x)
        for s in (LinearSchedule(), CosineSchedule(), PolynomialSchedule(2), PolynomialSchedule(3)):
            assert quadrature_nelbo(oracle, x, s) == pytest.approx(closed, rel=1e-8)
        model_nll = generative_nll(oracle, x)
        if smoothing:
            assert closed > model_nll + 1e-6
        else:
            assert closed == pytest.approx(-math.log(p), rel=1e-9)
            assert model_nll == pytest.approx(-math.log(p), rel=1e-9)
    expected_nelbo = sum(p * analytic_nelbo(oracle, x) for x, p in zip(ALL, PROBS))
    assert expected_nelbo >= float(-(PROBS * PROBS.log()).sum()) - 1e-9  # >= entropy (true NLL)


@pytest.mark.parametrize(
    "schedule", [None, PolynomialSchedule(2), CosineSchedule()], ids=["count", "poly2", "cosine"]
)
@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_estimate_matches_exact_nelbo(schedule, smoothing):
    oracle = Oracle(PROBS, smoothing)
    ids = sample_data(PROBS, 200, seed=0)
    est = elbo_bits_per_token(
        oracle,
        ids,
        MASK,
        schedule,
        num_samples=16,
        generator=torch.Generator().manual_seed(1),
        batch_size=512,
    )
    exact = _bits(oracle, ids)
    true_nll = sum(-math.log(PROBS[(ALL == x).all(-1)].item()) for x in ids) / (len(ids) * L * LN2)
    assert (
        0 < est.stderr < (0.012 if schedule is None else 0.04)
    )  # the count estimator has the lowest variance
    assert abs(est.bits_per_token - exact) < 4 * est.stderr, (est, exact)
    assert exact >= true_nll - 1e-9 and est.bits_per_token > true_nll - 4 * est.stderr
    if smoothing:
        assert exact - true_nll > 0.1 and est.bits_per_token - true_nll > 3 * est.stderr
    assert oracle.calls == math.ceil(200 * 16 / 512)  # batched: ceil(N K / batch_size) model calls


def test_stderr_is_calibrated_and_antithetic_reduces_variance():
    oracle = Oracle(PROBS, 0.5)
    ids = sample_data(PROBS, 32, seed=3)

    def runs(antithetic):
        g = torch.Generator().manual_seed(11)
        out = [
            elbo_bits_per_token(oracle, ids, MASK, None, 8, antithetic, generator=g, batch_size=256)
            for _ in range(60)
        ]
        return torch.tensor([o.bits_per_token for o in out]), torch.tensor([o.stderr for o in out])

    est_a, se_a = runs(True)
    est_i, se_i = runs(False)
    exact = _bits(oracle, ids)
    for est, se in ((est_a, se_a), (est_i, se_i)):
        ratio = est.std().item() / se.pow(2).mean().sqrt().item()  # empirical spread vs reported error
        assert 0.7 < ratio < 1.4, ratio
        assert abs(est.mean().item() - exact) < 4 * est.std().item() / math.sqrt(len(est))
    assert est_a.var() < 0.7 * est_i.var()


def test_maskable_gives_conditional_nelbo():
    """Only positions 1, 2 maskable: the estimate is the NELBO of x1 x2 given x0, which for the exact
    conditionals is -log p(x1, x2 | x0)."""
    oracle = Oracle(PROBS)
    ids = sample_data(PROBS, 128, seed=4)
    maskable = torch.tensor([False, True, True]).expand(128, L)
    est = elbo_bits_per_token(
        oracle, ids, MASK, maskable=maskable, num_samples=8, generator=torch.Generator().manual_seed(0)
    )
    p = {tuple(x.tolist()): q.item() for x, q in zip(ALL, PROBS)}
    cond = sum(
        -math.log(p[tuple(x.tolist())] / sum(q for y, q in p.items() if y[0] == x[0])) for x in ids
    ) / (128 * 2 * LN2)
    assert _bits(oracle, ids, positions=(1, 2)) == pytest.approx(cond, rel=1e-9)
    assert abs(est.bits_per_token - cond) < 4 * est.stderr


def test_samples_shape_padding_and_errors():
    oracle = Oracle(PROBS)
    ids = sample_data(PROBS, 5, seed=5)
    attention_mask = torch.ones(5, L, dtype=torch.long)
    attention_mask[2] = 0  # a fully padded row contributes nothing and costs no model call
    samples, n = nelbo_samples(oracle, ids, MASK, num_samples=6, num_groups=3, attention_mask=attention_mask)
    assert samples.shape == (5, 3, 2) and n.tolist() == [3, 3, 0, 3, 3]
    assert (samples[2] == 0).all() and (samples[[0, 1, 3, 4]] > 0).all()
    assert math.isnan(elbo_bits_per_token(oracle, ids, MASK, num_samples=4, num_groups=1).stderr)
    with pytest.raises(UserError, match="multiple"):
        elbo_bits_per_token(oracle, ids, MASK, num_samples=5)
    with pytest.raises(UserError, match="no maskable"):
        elbo_bits_per_token(oracle, ids, MASK, maskable=torch.zeros(5, L, dtype=torch.bool))


class CausalOracle:
    """logits[:, i] = log p(x_{i+1} | x_{<=i}) of the toy joint (AR model with exact conditionals)."""

    def __call__(self, input_ids, attention_mask=None):
        B = input_ids.shape[0]
        logits = torch.zeros(B, L, V)
        for i in range(L - 1):
            match = (ALL[None, :, : i + 1] == input_ids[:, None, : i + 1]).all(-1)  # [B, 27]
            w = PROBS[None] * match
            logits[:, i] = (
                w @ torch.nn.functional.one_hot(ALL[:, i + 1], V).double() / w.sum(-1, keepdim=True)
            ).log()
        return logits


def test_ar_bits_per_token_is_exact():
    ids = sample_data(PROBS, 50, seed=6)
    got = ar_bits_per_token(CausalOracle(), ids, batch_size=16)
    marg0 = torch.stack([PROBS[ALL[:, 0] == v].sum() for v in range(V)])
    expected = sum(
        -math.log(PROBS[(ALL == x).all(-1)].item()) + math.log(marg0[x[0]].item()) for x in ids
    ) / (50 * (L - 1) * LN2)
    assert got.bits_per_token == pytest.approx(expected, rel=1e-5) and got.stderr == 0.0
