import math

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.masking import (
    antithetic_times,
    floor_times,
    get_time_sampler,
    llada_mask_prob,
    mask_random_subset,
    mask_tokens,
    uniform_times,
)

MASK = 99


def test_masking_rate_matches_probability():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    x0 = torch.randint(0, 50, (5, 20000), generator=g)
    xt, is_masked = mask_tokens(x0, p, MASK, generator=g)
    rate = is_masked.double().mean(-1)
    sd = (p * (1 - p) / x0.shape[1]).sqrt().double()
    assert (rate - p).abs().le(5 * sd + 1e-12).all(), rate
    assert (xt[is_masked] == MASK).all() and (xt[~is_masked] == x0[~is_masked]).all()


def test_non_maskable_never_masked_and_per_token_probs():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randint(0, 50, (64, 40), generator=g)
    maskable = torch.rand(64, 40, generator=g) < 0.5
    xt, is_masked = mask_tokens(x0, torch.ones(64, 40), MASK, maskable, generator=g)
    assert torch.equal(is_masked, maskable)  # p = 1: exactly the maskable positions
    xt, is_masked = mask_tokens(x0, 0.7, MASK, maskable, generator=g)
    assert not is_masked[~maskable].any()
    assert torch.equal(xt[~maskable], x0[~maskable])
    assert abs(is_masked[maskable].float().mean().item() - 0.7) < 0.03


def test_masking_is_reproducible_with_generator():
    x0 = torch.randint(0, 10, (4, 16))
    a = mask_tokens(x0, 0.5, MASK, generator=torch.Generator().manual_seed(3))[1]
    b = mask_tokens(x0, 0.5, MASK, generator=torch.Generator().manual_seed(3))[1]
    assert torch.equal(a, b)


def test_bad_mask_id():
    x0 = torch.zeros(2, 3, dtype=torch.long)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(UserError, match="mask id"):
            mask_tokens(x0, 0.5, bad)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_antithetic_times_are_stratified(batch):
    g = torch.Generator().manual_seed(batch)
    for _ in range(20):
        t = antithetic_times(batch, generator=g)
        assert t.shape == (batch,) and ((t >= 0) & (t < 1)).all()
        strata = (t.double() * batch).floor().long().sort().values
        assert torch.equal(strata, torch.arange(batch))  # one time in each [k/B, (k+1)/B)


def test_antithetic_times_marginally_uniform():
    g = torch.Generator().manual_seed(0)
    first = torch.stack([antithetic_times(8, generator=g)[3] for _ in range(4000)])
    # each coordinate is U(0,1): mean 1/2, variance 1/12
    assert abs(first.mean().item() - 0.5) < 4 * math.sqrt(1 / 12 / 4000)
    assert abs(first.var().item() - 1 / 12) < 0.01


def test_uniform_times_and_lookup():
    t = uniform_times(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert t.dtype == torch.float64 and ((t >= 0) & (t < 1)).all() and abs(t.mean().item() - 0.5) < 0.05
    assert get_time_sampler("antithetic") is antithetic_times
    assert get_time_sampler(uniform_times) is uniform_times
    with pytest.raises(UserError, match="unknown time sampler"):
        get_time_sampler("sobol")


def test_llada_floor():
    t = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(llada_mask_prob(t), torch.tensor([1e-3, 0.5 * 0.999 + 1e-3, 1.0]))
    torch.testing.assert_close(floor_times(t, 0.1), torch.tensor([0.1, 0.55, 1.0]))


def test_mask_random_subset_exact_counts_and_uniform():
    g = torch.Generator().manual_seed(0)
    x0 = torch.arange(6).repeat(3000, 1)
    maskable = torch.tensor([False, True, True, True, True, False]).repeat(3000, 1)
    counts = torch.tensor([0, 1, 2, 4]).repeat(750)
    xt, is_masked = mask_random_subset(x0, counts, MASK, maskable, generator=g)
    assert torch.equal(is_masked.sum(-1), counts)
    assert not is_masked[~maskable].any() and (xt[is_masked] == MASK).all()
    # rows with one masked token: each maskable position equally likely
    freq = is_masked[counts == 1][:, 1:5].float().mean(0)
    assert (freq - 0.25).abs().max() < 0.06
