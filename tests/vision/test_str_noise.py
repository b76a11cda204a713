"""Each masking strategy's defining property, the strategy mix, and the replacement noise."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maskzoo.core.errors import UserError
from maskzoo.vision.str.noise import (
    STRATEGIES,
    NoiseMix,
    block,
    cloze,
    full_mask,
    left_to_right,
    noisy_input,
    random_mask,
    replace_with_predictions,
    right_to_left,
)

L = 26


def _sizes(n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, L + 1, (n,), generator=g), g  # label size m = chars + EOS, in [1, 26]


def _valid(sizes):
    return torch.arange(L)[None, :] < sizes[:, None]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_masks_only_label_positions_and_at_least_one(name):
    sizes, g = _sizes()
    mask, p = STRATEGIES[name](sizes, L, g)
    assert mask.shape == (len(sizes), L) and mask.dtype == torch.bool
    assert not (mask & ~_valid(sizes)).any(), "a PAD position was masked"
    assert (mask.sum(-1) >= 1).all()
    assert ((p > 0) & (p <= 1)).all()


def test_full_mask_masks_everything_with_p_one():
    sizes, g = _sizes()
    mask, p = full_mask(sizes, L, g)
    assert torch.equal(mask, _valid(sizes)) and (p == 1).all()


def _first_last(mask):
    idx = torch.arange(L)[None, :].expand_as(mask)
    first = torch.where(mask, idx, L).min(-1).values
    last = torch.where(mask, idx, -1).max(-1).values
    return first, last


def _contiguous(mask):
    first, last = _first_last(mask)
    return (last - first + 1 == mask.sum(-1)).all()


def test_left_to_right_masks_a_suffix():
    sizes, g = _sizes()
    mask, p = left_to_right(sizes, L, g)
    first, last = _first_last(mask)
    assert _contiguous(mask) and torch.equal(last, sizes - 1)  # ends at EOS: the clean part is a prefix
    assert torch.allclose(p, mask.sum(-1) / sizes)
    assert (first == 0).any() and (first > 0).any()  # the clean prefix length varies, 0 included


def test_right_to_left_masks_a_prefix():
    sizes, g = _sizes()
    mask, p = right_to_left(sizes, L, g)
    first, last = _first_last(mask)
    assert _contiguous(mask) and (first == 0).all()
    assert torch.allclose(p, mask.sum(-1) / sizes)
    assert (last == sizes - 1).any() and (last < sizes - 1).any()


def test_block_masks_two_to_six_contiguous_positions():
    sizes, g = _sizes()
    mask, p = block(sizes, L, g)
    n = mask.sum(-1)
    assert _contiguous(mask)
    assert (n == torch.clamp(n, max=6)).all() and (n >= torch.clamp(sizes, max=2)).all()
    long_rows = sizes >= 6
    assert set(n[long_rows].tolist()) == {2, 3, 4, 5, 6}
    assert torch.allclose(p, n / sizes)


def test_cloze_masks_exactly_one_position_uniformly():
    sizes = torch.full((6000,), 3)
    mask, p = cloze(sizes, L, torch.Generator().manual_seed(1))
    assert (mask.sum(-1) == 1).all() and torch.allclose(p, torch.full_like(p, 1 / 3))
    counts = mask.sum(0)[:3].float() / 6000
    assert torch.allclose(counts, torch.full((3,), 1 / 3), atol=0.03)


def test_random_masking_rate_follows_p():
    sizes = torch.full((4000,), L)
    mask, p = random_mask(sizes, L, torch.Generator().manual_seed(2))
    rate = mask.float().mean(-1)
    assert p.min() < 0.1 and p.max() > 0.9  # p ~ U(eps, 1)
    assert (rate - p).abs().mean() < 0.1
    hi, lo = p > 0.7, p < 0.3
    assert rate[hi].mean() > 0.7 and rate[lo].mean() < 0.35


def test_mix_respects_weights():
    sizes, g = _sizes(3000)
    only_cloze = NoiseMix(full=0, left_to_right=0, right_to_left=0, block=0, cloze=1, random=0)
    mask, p, choice = only_cloze.sample(sizes, L, g)
    assert (choice == list(STRATEGIES).index("cloze")).all() and (mask.sum(-1) == 1).all()
    mix = NoiseMix(full=3, left_to_right=1, right_to_left=0, block=0, cloze=0, random=0)
    mask, p, choice = mix.sample(sizes, L, g)
    frac_full = (choice == 0).float().mean()
    assert abs(float(frac_full) - 0.75) < 0.04 and set(choice.tolist()) == {0, 1}
    assert torch.equal(mask[choice == 0], _valid(sizes)[choice == 0])


def test_mix_validation():
    with pytest.raises(UserError):
        NoiseMix(full=0, left_to_right=0, right_to_left=0, block=0, cloze=0, random=0).validate()
    with pytest.raises(UserError):
        NoiseMix(replace_weight=-1).validate()


_weight = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 5))


@settings(max_examples=200, deadline=None)
@given(ws=st.lists(_weight, min_size=6, max_size=6), replace=_weight)
def test_mix_either_validates_and_samples_or_says_one_user_error(ws, replace):
    """Any weights: valid ones (finite, >= 0, positive sum) sample only strategies of positive weight; anything
    else (NaN, inf, negative, all zero) is refused by validate(), before training starts."""
    mix = NoiseMix(**dict(zip(STRATEGIES, ws)), replace_weight=replace)
    w = [float(v) for v in ws]
    valid = (all(math.isfinite(v) and v >= 0 for v in w) and sum(w) > 0
             and math.isfinite(float(replace)) and replace >= 0)
    if not valid:
        with pytest.raises(UserError):
            mix.validate()
        return
    mix.validate()
    sizes, g = _sizes(64)
    mask, p, choice = mix.sample(sizes, L, g)
    assert all(w[k] > 0 for k in set(choice.tolist()))
    assert not (mask & ~_valid(sizes)).any() and (mask.sum(-1) >= 1).all()


def test_noisy_input_and_replacement_noise():
    mask_id, pad_id = 95, 96
    targets = torch.tensor([[5, 6, 7, 0, pad_id, pad_id]])
    masked = torch.tensor([[False, True, True, False, False, False]])
    x_t = noisy_input(targets, masked, mask_id, pad_id)
    assert x_t.tolist() == [[5, mask_id, mask_id, 0, mask_id, mask_id]]
    preds = torch.tensor([[9, 6, 8, 0, 3, 3]])  # position 1 right, position 2 wrong
    x_r = replace_with_predictions(targets, masked, preds, mask_id, pad_id)
    assert x_r.tolist() == [[5, 6, 8, 0, mask_id, mask_id]]  # the wrong 8 is the replacement noise
