"""Fast decoding at any batch size: caches, threshold and factor rules, with padding, guidance, EOS and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maskzoo.core import load_model
from maskzoo.core.errors import UserError
from maskzoo.core.sampling import generate
from maskzoo.core.sampling.parallel import Factor, Threshold

FIXTURE = Path(__file__).parent / "fixtures" / "fastdllm" / "llada_tiny_sharp"
PROMPTS = [[11, 42, 17, 3, 50, 21, 7, 33, 8], [25, 9, 18, 33, 44], [7, 7, 30], [1, 2, 3, 4, 5, 6, 7]]
PAD = 6


@pytest.fixture(scope="module")
def model():
    return load_model(str(FIXTURE)).eval()


FAST = [
    dict(cache=None, threshold=None),
    dict(cache="prefix", threshold=None),
    dict(cache="dual", threshold=None),
    dict(cache=None, threshold=0.7),
    dict(cache="prefix", threshold=0.5),
    dict(cache="dual", threshold=0.9),
    dict(cache="dual", factor=1.0),
    dict(cache=None, factor=0.5),
]


@pytest.mark.parametrize("fast", FAST, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_rows_of_a_padded_batch_equal_each_prompt_alone(model, fast):
    kw = dict(gen_length=16, steps=16, block_length=8, **fast)
    batch = generate(model, [torch.tensor(p) for p in PROMPTS], pad_id=PAD, **kw)  # [4, 9 + 16]
    width = batch.shape[1] - 16
    for row, p in zip(batch, PROMPTS, strict=True):
        alone = generate(model, torch.tensor([p]), **kw)[0]
        assert row[width - len(p) :].tolist() == alone.tolist()


@pytest.mark.parametrize("cache", [None, "prefix", "dual"])
def test_guidance_with_caches_is_batch_invariant(model, cache):
    kw = dict(gen_length=8, steps=8, block_length=4, cfg_scale=1.0, cache=cache, threshold=0.8)
    batch = generate(model, torch.tensor([PROMPTS[0], PROMPTS[0][::-1]]), **kw)
    assert batch[1].tolist() == generate(model, torch.tensor([PROMPTS[0][::-1]]), **kw)[0].tolist()
    assert not torch.equal(batch[0], generate(model, torch.tensor([PROMPTS[0]]), **dict(kw, cfg_scale=0.0))[0])


def test_caches_change_tokens_only_as_approximations(model):
    """Both caches reuse stale keys/values, so on this bidirectional model they differ from exact decoding."""
    kw = dict(gen_length=16, steps=16, block_length=8)
    prompt = torch.tensor([PROMPTS[0]])
    exact = generate(model, prompt, **kw)
    assert not torch.equal(exact, generate(model, prompt, cache="dual", **kw))
    one_block = dict(gen_length=8, steps=1, block_length=8)  # one step per block: only the full first call runs
    assert torch.equal(generate(model, prompt, **one_block), generate(model, prompt, cache="dual", **one_block))


def test_eos_stops_every_cache(model):
    prompt = torch.tensor([PROMPTS[1]])
    plain = generate(model, prompt, gen_length=16, steps=16, block_length=4)
    eos = int(plain[0, 5 + 1])  # a token decoded in the first block
    for cache in (None, "prefix", "dual"):
        out = generate(model, prompt, gen_length=16, steps=16, block_length=4, eos_id=eos, cache=cache, pad_id=PAD)
        gen = out[0, 5:].tolist()
        first = gen.index(eos)
        assert all(t == PAD for t in gen[first + 1 :])


def test_threshold_reveals_at_least_one_and_more_when_confident(model):
    calls = []
    model_calls = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        generate(model, torch.tensor([PROMPTS[0]]), gen_length=16, steps=16, block_length=16, threshold=1.0)
        exact_count = len(calls)
        calls.clear()
        generate(model, torch.tensor([PROMPTS[0]]), gen_length=16, steps=16, block_length=16, threshold=0.3)
    finally:
        model_calls.remove()
    assert exact_count == 16 and len(calls) < 8  # threshold 1 reveals one per step (p < 1), 0.3 several


def _brute_force_count(conf: list[float], bound) -> int:
    """Largest k such that the j-th highest confidence passes bound(j) for every j <= k."""
    ranked = sorted(conf, reverse=True)
    best = 0
    for k in range(1, len(ranked) + 1):
        if all(ranked[j - 1] >= bound(j) for j in range(1, k + 1)):
            best = k
    return best


def test_count_rules_against_their_definitions():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 12, (1,), generator=g))
        conf = torch.rand(n, generator=g, dtype=torch.float64) ** 0.3
        ranked = torch.sort(conf, descending=True).values[None]  # [1, n]
        for f in (0.5, 1.0, 2.0):
            assert int(Factor(f).count(ranked)) == _brute_force_count(conf.tolist(), lambda j, f=f: 1 - f / (j + 1))
        for t in (0.5, 0.9):
            assert int(Threshold(t).count(ranked)) == _brute_force_count(conf.tolist(), lambda j, t=t: t)


def test_plain_callables_and_bad_options_raise_user_error(model):
    prompt = torch.tensor([[1, 2, 3]])
    kw = dict(gen_length=8, steps=8, block_length=8)
    with pytest.raises(UserError, match="holds a key/value cache"):
        generate(lambda ids: model(ids), prompt, mask_id=60, cache="dual", **kw)
    for bad, match in [
        (dict(cache="full"), "unknown cache"),
        (dict(threshold=0.0), "threshold must be in"),
        (dict(threshold=1.5), "threshold must be in"),
        (dict(threshold=float("nan")), "finite"),
        (dict(factor=0.0), "factor must be > 0"),
        (dict(threshold=0.5, factor=1.0), "give one of them"),
        (dict(threshold=0.5, remasking="random"), "threshold/factor"),
    ]:
        with pytest.raises(UserError, match=match):
            generate(model, prompt, **kw, **bad)
    with pytest.raises(UserError, match="infilling"):
        generate(model, torch.tensor([[1, 60, 3]]), cache="prefix", **kw)


def test_dilated_groups_are_non_adjacent_coarse_to_fine():
    from maskzoo.core.sampling.dilated import dilation_groups

    assert dilation_groups(8) == [[0, 4], [2, 6], [1, 3, 5, 7]]
    for b in range(1, 40):
        groups = dilation_groups(b)
        assert sorted(i for g in groups for i in g) == list(range(b))
        assert len(groups) == max(1, (b - 1).bit_length())  # ceil(log2 b) steps
        if b >= 3:  # a block of 2 in one step cannot avoid adjacency
            assert all(j - i >= 2 for g in groups for i, j in zip(g, g[1:], strict=False))


@pytest.mark.parametrize("cache", [None, "dual"])
def test_dus_uses_log2_calls_per_block_with_any_cache(model, cache):
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        out = generate(model, torch.tensor([PROMPTS[0]]), gen_length=32, steps=32, block_length=16,
                       remasking="dus", cache=cache)
    finally:
        hook.remove()
    assert len(calls) == 2 * 4 and not bool((out == 60).any())


def test_remdm_remasks_and_still_fills_every_position(model):
    from maskzoo.core.sampling.remdm import ReMDMSampler

    out = generate(model, torch.tensor([PROMPTS[0]] * 3), gen_length=16, steps=32, block_length=16,
                   remasking=ReMDMSampler(eta=0.5, strategy="rescale"), temperature=1.0,
                   generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 25) and not bool((out == 60).any())
    with pytest.raises(UserError, match="strategy"):
        ReMDMSampler(strategy="loop")
