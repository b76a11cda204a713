"""Statistical tests: samplers draw from the right distributions.

An oracle denoiser returns the exact conditionals p(x0_i | unmasked tokens) of a known, non-product joint over
sequences of length 3 with 3 tokens. Revealing one token per step, in any order, then samples the joint exactly
(chain rule), and so do the first-hitting sampler and fine-grained ancestral sampling. Each test draws 20k
sequences in one batch with a fixed seed and runs a chi-square goodness-of-fit test against the joint.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from maskzoo.core.sampling import TokenDraw, generate

LENGTH, TOKENS, MASK = 3, 3, 3  # token ids 0..2, mask id 3
N = 20_000
SEQS = torch.tensor(list(itertools.product(range(TOKENS), repeat=LENGTH)))  # [27, 3]


def chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Upper tail of the chi-square statistic sum (O - E)^2 / E with len - 1 degrees of freedom."""
    expected = probs.double() * counts.sum()
    stat = ((counts.double() - expected) ** 2 / expected).sum()
    dof = torch.tensor((len(probs) - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, stat / 2))


def make_joint() -> torch.Tensor:
    """A fixed joint over the 27 sequences with strong correlations (not a product of marginals)."""
    g = torch.Generator().manual_seed(1234)
    logits = torch.randn(len(SEQS), generator=g, dtype=torch.float64) * 1.2
    logits += 1.5 * (SEQS[:, 0] == SEQS[:, 2]).double() - 1.0 * (SEQS[:, 1] == SEQS[:, 0]).double()
    return torch.softmax(logits, 0)


def exact_conditionals(joint: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """logits[b, i, v] = log p(x_i = v | unmasked tokens of ids[b]) under ``joint``; ids [B, 3] -> [B, 3, 4]."""
    known = ids != MASK  # [B, 3]
    agree = (SEQS[None] == ids[:, None]) | ~known[:, None]  # [B, 27, 3]
    weight = joint[None] * agree.all(-1)  # [B, 27]
    onehot = torch.nn.functional.one_hot(SEQS, TOKENS).double()  # [27, 3, 3]
    cond = torch.einsum("bs,siv->biv", weight, onehot)  # [B, 3, 3]
    cond = cond / cond.sum(-1, keepdim=True)
    logits = torch.full((*ids.shape, TOKENS + 1), float("-inf"), dtype=torch.float64)
    logits[..., :TOKENS] = cond.log()  # the mask token has probability 0
    return logits


class OracleDenoiser:
    """Exact conditionals of ``joint``, looked up from a table over the 4^3 partially masked states."""

    mask_id = MASK

    def __init__(self, joint: torch.Tensor):
        states = torch.tensor(list(itertools.product(range(TOKENS + 1), repeat=LENGTH)))  # [64, 3]
        self.table = exact_conditionals(joint, states)  # [64, 3, 4]
        self.calls = 0

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        code = (ids * torch.tensor([16, 4, 1])).sum(1)  # [B] base-4 state index
        return self.table[code]  # [B, 3, 4]


def sequence_counts(out: torch.Tensor) -> torch.Tensor:
    """Counts of each of the 27 sequences among the rows of ``out`` [N, 3]."""
    code = (out * torch.tensor([9, 3, 1])).sum(1)
    return torch.bincount(code, minlength=len(SEQS))


def _sample(remasking: str, steps: int = LENGTH, block_length: int = LENGTH, **kw):
    joint = make_joint()
    model = OracleDenoiser(joint)
    prompt = torch.zeros(N, 0, dtype=torch.long)
    out = generate(
        model,
        prompt,
        gen_length=LENGTH,
        steps=steps,
        block_length=block_length,
        temperature=1.0,
        remasking=remasking,
        generator=torch.Generator().manual_seed(7),
        **kw,
    )
    assert not (out == MASK).any()
    return chi2_pvalue(sequence_counts(out), joint), model.calls


@pytest.mark.parametrize(
    "remasking,steps,block_length",
    [("random", 3, 3), ("random", 3, 1), ("first_hitting", 3, 3), ("first_hitting", 3, 1)],
)
def test_one_token_per_step_samples_the_joint(remasking, steps, block_length):
    pvalue, calls = _sample(remasking, steps, block_length)
    assert calls == LENGTH
    assert pvalue > 1e-3


def test_ancestral_with_many_steps_samples_the_joint():
    """Fine grid: two tokens almost never unmask in the same step; cached p(x0) keeps model calls per row low."""
    pvalue, _ = _sample("ancestral", steps=1000)
    assert pvalue > 1e-3


def test_test_has_power_all_tokens_at_once_is_rejected():
    """Revealing all three tokens in one step draws from the product of marginals: the test must reject it."""
    pvalue, _ = _sample("random", steps=1)
    assert pvalue < 1e-6


def _draw_counts(draw: TokenDraw, logits: torch.Tensor, n: int = N) -> torch.Tensor:
    ids = draw(logits.expand(n, -1))  # [n]
    return torch.bincount(ids, minlength=logits.shape[-1])


LOGITS = torch.tensor([1.0, 0.2, -0.5, 2.0, 0.0, -1.5])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_samples_softmax_over_temperature(temperature):
    draw = TokenDraw(temperature=temperature, generator=torch.Generator().manual_seed(1))
    target = torch.softmax(LOGITS / temperature, 0)
    assert chi2_pvalue(_draw_counts(draw, LOGITS), target) > 1e-3


def test_top_k_keeps_k_tokens_renormalised():
    draw = TokenDraw(temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(2))
    counts = _draw_counts(draw, LOGITS)
    keep = torch.tensor([0, 1, 3])  # the three largest logits
    assert counts.sum() == counts[keep].sum()
    assert chi2_pvalue(counts[keep], torch.softmax(LOGITS[keep], 0)) > 1e-3


def test_top_p_keeps_the_nucleus_renormalised():
    temperature = 0.8
    probs = torch.softmax(LOGITS / temperature, 0)  # order: 3, 0, 1, 4, 2, 5
    order = torch.argsort(probs, descending=True)
    p = float(probs[order[:2]].sum()) + 1e-3  # the smallest set reaching p has three tokens
    draw = TokenDraw(temperature=temperature, top_p=p, generator=torch.Generator().manual_seed(3))
    counts = _draw_counts(draw, LOGITS)
    keep = order[:3]
    assert counts.sum() == counts[keep].sum()
    assert chi2_pvalue(counts[keep], probs[keep] / probs[keep].sum()) > 1e-3


def test_greedy_is_argmax_and_ignores_filters():
    draw = TokenDraw(temperature=0.0, top_k=1, top_p=0.1)
    assert int(draw(LOGITS)) == 3


def test_oracle_conditionals_are_the_joint_marginals_when_all_masked():
    joint = make_joint()
    logits = OracleDenoiser(joint)(torch.full((1, LENGTH), MASK))  # [1, 3, 4]
    for i in range(LENGTH):
        marginal = torch.zeros(TOKENS, dtype=torch.float64).index_add_(0, SEQS[:, i], joint)
        torch.testing.assert_close(logits[0, i, :TOKENS].exp(), marginal)


@pytest.mark.parametrize(
    "strategy, eta", [("cap", 0.005), pytest.param("rescale", 0.01, marks=pytest.mark.slow)]
)
def test_remdm_with_remasking_still_samples_the_joint(strategy, eta):
    """ReMDM keeps the forward marginals for any sigma <= sigma_max: with an exact denoiser and a fine grid the
    samples follow the joint, although decoded tokens are remasked along the way. Sigma is a per-step
    probability: a large one makes many tokens change in one step, as too few steps would, and the test rejects that
    (eta 0.2 gives p ~ 1e-28)."""
    from maskzoo.core.sampling.remdm import ReMDMSampler

    pvalue, _ = _sample(ReMDMSampler(eta=eta, strategy=strategy), steps=500)
    assert pvalue > 1e-3
