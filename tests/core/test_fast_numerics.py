"""Sampler numerics: Gumbel-max with huge logits, suppressed tokens, the mask token never drawn where it must not be."""

from __future__ import annotations

import math

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.sampling import generate, gumbel_argmax

V, MASK = 6, 5


def chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Upper tail of sum (O - E)^2 / E with len - 1 degrees of freedom (cells with E = 0 must have O = 0)."""
    expected = probs.double() * counts.sum()
    keep = expected > 0
    assert counts[~keep].sum() == 0, "a token of probability 0 was drawn"
    stat = ((counts[keep].double() - expected[keep]) ** 2 / expected[keep]).sum()
    dof = torch.tensor((int(keep.sum()) - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, stat / 2))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("offset", [0.0, 800.0, 5000.0])
def test_gumbel_draw_matches_the_categorical_for_huge_logits(temperature, offset):
    """softmax(l / T) is shift invariant: logits shifted by 800 or 5000 (exp overflows float64 above ~709) must be
    drawn with the same analytic probabilities as unshifted ones."""
    base = torch.tensor([0.0, math.log(2.0), math.log(3.0), -1.0, float("-inf"), 0.5])
    logits = (base + offset).expand(40_000, V).to(torch.float32)  # [N, V]
    g = torch.Generator().manual_seed(7)
    ids = gumbel_argmax(logits, temperature, g)  # [N]
    counts = torch.bincount(ids, minlength=V)
    probs = torch.softmax(base.double() / temperature, dim=0)
    assert chi2_pvalue(counts, probs) > 1e-3


def test_gumbel_draw_never_picks_minus_inf():
    logits = torch.full((1000, V), float("-inf"))
    logits[:, 3] = 1e30  # one finite (enormous) logit
    assert bool((gumbel_argmax(logits, 1.0, torch.Generator().manual_seed(0)) == 3).all())


class FavoursToken(torch.nn.Module):
    """Logits from a fixed random table; token ``fav`` gets +``bonus``; optionally the mask gets +``mask_bonus``."""

    mask_id = MASK

    def __init__(self, fav: int, bonus: float = 8.0, mask_bonus: float = -1e4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(V, 32, V, generator=g)
        self.table[..., fav] += bonus
        self.table[..., MASK] = mask_bonus

    def forward(self, ids, attention_mask=None):
        pos = torch.arange(ids.shape[1])
        return self.table[torch.roll(ids, 1, dims=1), pos] + 0.3 * self.table[ids, pos]  # [B, L, V]


class SuppressAtMasks(torch.nn.Module):
    """What LLaDA-V's generate_with_embeds does inline: suppressed ids get -inf at the masked positions."""

    mask_id = MASK

    def __init__(self, inner: torch.nn.Module, ids: list[int]):
        super().__init__()
        self.inner, self.ids = inner, ids

    def forward(self, ids, attention_mask=None):
        logits = self.inner(ids).clone()  # [B, L, V]
        masked = (ids == MASK)[..., None]  # [B, L, 1]
        logits[..., self.ids] = torch.where(masked, float("-inf"), logits[..., self.ids])
        return logits


@pytest.mark.parametrize("remasking", ["low_confidence", "margin", "entropy", "random", "first_hitting", "ancestral"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_suppress_tokens_equals_suppressing_at_masked_positions(remasking, temperature):
    model = FavoursToken(fav=2)
    prompt = torch.tensor([[1, 3, 0], [4, 4, 1]])
    kw = dict(gen_length=8, steps=8, block_length=4, temperature=temperature, remasking=remasking)
    plain = generate(model, prompt, generator=torch.Generator().manual_seed(3), **kw)
    assert bool((plain[:, 3:] == 2).any()), "the test model must favour token 2"
    out = generate(model, prompt, suppress_tokens=[2, 0], generator=torch.Generator().manual_seed(3), **kw)
    ref = generate(SuppressAtMasks(model, [0, 2]), prompt, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(out, ref)
    assert not bool(torch.isin(out[:, 3:], torch.tensor([0, 2])).any())


def test_suppress_tokens_with_guidance_draws_no_suppressed_id():
    model = FavoursToken(fav=2)
    out = generate(model, torch.tensor([[1, 3]]), gen_length=8, steps=8, block_length=8, cfg_scale=1.5,
                   suppress_tokens=torch.tensor([2]))
    assert not bool((out[:, 2:] == 2).any()) and not bool((out == MASK).any())


@pytest.mark.parametrize(
    "tokens, match",
    [([V], "outside the vocabulary"), ([-1], "outside the vocabulary"), (list(range(V)), "every token"),
     ([[1, 2]], "flat sequence"), ([0.5], "integer"), ("ab", "token ids")],
)
def test_bad_suppress_tokens_raise_user_error(tokens, match):
    model = FavoursToken(fav=2)
    model.config = type("C", (), {"vocab_size": V})()
    with pytest.raises(UserError, match=match):
        generate(model, torch.tensor([[1]]), gen_length=4, steps=4, block_length=4, suppress_tokens=tokens)


@pytest.mark.parametrize("remasking", ["first_hitting", "ancestral"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_ancestral_and_first_hitting_never_draw_the_mask(remasking, temperature):
    model = FavoursToken(fav=2, bonus=0.0, mask_bonus=6.0)  # the mask is the favourite prediction everywhere
    out = generate(model, torch.zeros(16, 2, dtype=torch.long), gen_length=8, steps=8, block_length=8,
                   temperature=temperature, remasking=remasking, generator=torch.Generator().manual_seed(0))
    assert not bool((out == MASK).any())


def test_confidence_samplers_keep_the_reference_behaviour_for_the_mask():
    """LLaDA's reference draws argmax including the mask; such positions stay masked (documented behaviour)."""
    model = FavoursToken(fav=2, bonus=0.0, mask_bonus=6.0)
    out = generate(model, torch.zeros(1, 2, dtype=torch.long), gen_length=8, steps=8, block_length=8)
    assert bool((out[:, 2:] == MASK).all())
    fixed = generate(model, torch.zeros(1, 2, dtype=torch.long), gen_length=8, steps=8, block_length=8,
                     suppress_tokens=[MASK])
    assert not bool((fixed == MASK).any())
