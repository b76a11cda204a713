"""Unit tests of the sampling parts: counts, confidence rules, guidance, EOS, caching, infilling, validation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.sampling import CONFIDENCE_RULES, SAMPLERS, generate, transfer_counts
from maskzoo.core.sampling.stopping import trim_after_eos

V, MASK, EOS = 10, 9, 8




class Counting(torch.nn.Module):
    """Logits from a fixed random table of (token, position), never predicting the mask; records its inputs."""

    mask_id = MASK

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(V, 64, V, generator=g)
        self.table[..., MASK] = -1e4
        self.inputs: list[torch.Tensor] = []

    def forward(self, ids, attention_mask=None):
        self.inputs.append(ids.clone())
        pos = torch.arange(ids.shape[1])
        left = torch.roll(ids, 1, dims=1)
        return self.table[left, pos] + 0.5 * self.table[ids, pos]  # [B, L, V]


def test_transfer_counts_split():
    counts = transfer_counts(torch.tensor([10, 3, 0, 8]), 4)
    assert counts.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0], [2, 2, 2, 2]]


def test_confidence_rules():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]]))  # [1, 2, 3]
    x0 = torch.tensor([[0, 1]])
    torch.testing.assert_close(
        CONFIDENCE_RULES["low_confidence"](logits, x0, None), torch.tensor([[0.7, 0.4]])
    )
    torch.testing.assert_close(CONFIDENCE_RULES["margin"](logits, x0, None), torch.tensor([[0.5, 0.0]]))
    ent = CONFIDENCE_RULES["entropy"](logits, x0, None)
    p = logits.exp()
    torch.testing.assert_close(ent, (p * p.log()).sum(-1))
    r = CONFIDENCE_RULES["random"](logits, x0, torch.Generator().manual_seed(0))
    assert r.shape == (1, 2) and bool(((r >= 0) & (r < 1)).all())


@pytest.mark.parametrize("remasking", sorted(SAMPLERS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_every_sampler_fills_every_position_and_keeps_the_prompt(remasking, temperature):
    model = Counting()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    g = torch.Generator().manual_seed(0)
    out = generate(
        model,
        prompt,
        gen_length=8,
        steps=8,
        block_length=4,
        temperature=temperature,
        remasking=remasking,
        generator=g,
        top_k=5,
        top_p=0.9,
    )
    assert out.shape == (2, 11) and out.dtype == torch.long
    assert torch.equal(out[:, :3], prompt)
    assert not (out == MASK).any()


@pytest.mark.parametrize("remasking", ["random", "first_hitting", "ancestral", "margin"])
def test_sampling_is_reproducible_with_a_generator(remasking):
    def run():
        g = torch.Generator().manual_seed(5)
        return generate(
            Counting(),
            torch.tensor([[1, 2]]),
            gen_length=8,
            steps=8,
            block_length=8,
            temperature=1.0,
            remasking=remasking,
            generator=g,
        )

    assert torch.equal(run(), run())


def test_ancestral_reuses_p_x0_when_nothing_changed():
    model = Counting()
    out = generate(
        model,
        torch.tensor([[1, 2]]),
        gen_length=6,
        steps=200,
        block_length=6,
        temperature=1.0,
        remasking="ancestral",
        generator=torch.Generator().manual_seed(3),
    )
    assert not (out == MASK).any()
    assert 1 <= len(model.inputs) <= 6  # at most one model call per revealed token, far fewer than 200 steps
    for before, after in zip(model.inputs, model.inputs[1:]):
        assert not torch.equal(before, after)  # never called twice on the same x_t


def test_ancestral_calls_the_whole_batch_only_when_a_revealing_row_changed():
    """Models may close over per-row context, so every call gets the full batch; calls <= steps that reveal."""
    model = Counting()
    generate(
        model,
        torch.ones(4, 2, dtype=torch.long),
        gen_length=6,
        steps=50,
        block_length=6,
        temperature=1.0,
        remasking="ancestral",
        generator=torch.Generator().manual_seed(4),
    )
    assert all(x.shape == (4, 8) for x in model.inputs)
    assert len(model.inputs) <= 4 * 6  # at most one call per revealed token, far fewer than 50 steps
    for before, after in zip(model.inputs, model.inputs[1:]):
        assert not torch.equal(before, after)


@pytest.mark.parametrize("schedule", ["cosine", "loglinear"])
def test_ancestral_accepts_named_schedules(schedule):
    out = generate(
        Counting(),
        torch.tensor([[1]]),
        gen_length=4,
        steps=16,
        block_length=4,
        temperature=1.0,
        remasking="ancestral",
        schedule=schedule,
        generator=torch.Generator().manual_seed(0),
    )
    assert not (out == MASK).any()


def test_first_hitting_calls_once_per_token_at_any_batch_size():
    model = Counting()
    generate(
        model,
        torch.ones(5, 1, dtype=torch.long),
        gen_length=8,
        steps=8,
        block_length=4,
        temperature=1.0,
        remasking="first_hitting",
        generator=torch.Generator().manual_seed(0),
    )
    assert len(model.inputs) == 8
    for before, after in zip(model.inputs, model.inputs[1:]):
        assert int((before != after).sum(1).max()) <= 1 and bool(((before != after).sum(1) == 1).all())


def test_classifier_free_guidance_formula():
    """Logits = un + (w + 1)(cond - un), with the prompt masked in the unconditional half, in one batched call."""
    calls = []

    def model(ids, attention_mask=None):
        calls.append(ids.clone())
        logits = torch.zeros(*ids.shape, V)
        has_prompt = (ids[:, :1] != MASK).float()  # [b, 1]
        logits[..., 2] = 1.0 + 0.5 * has_prompt  # cond 1.5, uncond 1.0
        logits[..., 4] = 1.2  # the same for both
        return logits

    model.mask_id = MASK
    prompt = torch.tensor([[1, 2]])
    out0 = generate(model, prompt, gen_length=2, steps=2, block_length=2)
    assert out0[0, 2:].tolist() == [2, 2]  # 1.5 > 1.2 conditionally
    calls.clear()
    out = generate(model, prompt, gen_length=2, steps=2, block_length=2, cfg_scale=1.0)
    # guided: token 2 -> 1.0 + 2 * 0.5 = 2.0, token 4 -> 1.2: still 2; check the unconditional input
    assert out[0, 2:].tolist() == [2, 2]
    assert (
        calls[0].shape[0] == 2
        and calls[0][1, :2].tolist() == [MASK, MASK]
        and calls[0][0, :2].tolist() == [1, 2]
    )


def test_guidance_can_flip_the_choice():
    """Token 2: cond 1.1, uncond 1.2 -> guided 1.2 + 4 * (-0.1) = 0.8; token 4: 1.05 either way."""

    def model(ids, attention_mask=None):
        logits = torch.zeros(*ids.shape, V)
        cond = (ids[:, :1] != MASK).float()  # [b, 1]
        logits[..., 2] = 1.2 - 0.1 * cond
        logits[..., 4] = 1.05
        return logits

    model.mask_id = MASK
    plain = generate(model, torch.tensor([[1]]), gen_length=1, steps=1, block_length=1)
    guided = generate(model, torch.tensor([[1]]), gen_length=1, steps=1, block_length=1, cfg_scale=3.0)
    assert plain[0, 1] == 2 and guided[0, 1] == 4


def test_eos_stops_early_and_trims():
    """Row 0 emits EOS in block 1, row 1 in block 2: generation stops after block 2; tokens after EOS are pad."""
    calls = []

    def model(ids, attention_mask=None):
        calls.append(1)
        logits = torch.zeros(*ids.shape, V)
        logits[..., 5] = 1.0
        logits[0, 4, EOS] = 5.0  # row 0: EOS at the 2nd generated position
        logits[1, 7, EOS] = 5.0  # row 1: EOS at the 5th generated position
        return logits

    model.mask_id = MASK
    out = generate(
        model,
        torch.tensor([[1, 2, 3], [1, 2, 3]]),
        gen_length=12,
        steps=12,
        block_length=4,
        eos_id=EOS,
        pad_id=0,
    )
    assert len(calls) == 8  # two blocks of four steps, the third never runs
    assert out[0, 3:].tolist() == [5, EOS] + [0] * 10
    assert out[1, 3:].tolist() == [5, 5, 5, 5, EOS] + [0] * 7


def test_trim_fills_with_eos_without_pad():
    x = torch.tensor([[1, 5, EOS, 5, MASK]])
    assert trim_after_eos(x, 1, EOS, EOS).tolist() == [[1, 5, EOS, EOS, EOS]]


def test_infilling_masks_in_the_prompt():
    model = Counting()
    prompt = torch.tensor([[1, MASK, 3, MASK, MASK]])
    out = generate(model, prompt, gen_length=0, steps=3)
    assert out.shape == (1, 5) and not (out == MASK).any()
    assert out[0, [0, 2]].tolist() == [1, 3]
    out = generate(model, prompt, gen_length=4, steps=4, block_length=2)
    assert not (out == MASK).any()


def test_mask_id_from_config_and_logits_attribute():
    table = Counting()

    class HF(torch.nn.Module):
        config = SimpleNamespace(mask_token_id=MASK, vocab_size=V, max_sequence_length=16)

        def forward(self, input_ids, attention_mask=None):
            return SimpleNamespace(logits=table(input_ids))

    out = generate(HF(), torch.tensor([[1, 2]]), gen_length=4, steps=4, block_length=4)
    assert torch.equal(out, generate(table, torch.tensor([[1, 2]]), gen_length=4, steps=4, block_length=4))
    with pytest.raises(UserError, match="context of 16"):
        generate(HF(), torch.ones(1, 14, dtype=torch.long), gen_length=4, steps=4, block_length=4)


def _plain(ids):
    return torch.zeros(*ids.shape, V)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mask_id=None), "mask_id is not given"),
        (dict(mask_id=V), "outside the model's vocabulary"),
        (dict(gen_length=10, block_length=4), "not a multiple of block_length"),
        (dict(gen_length=8, block_length=4, steps=5), "not divisible by the number of blocks"),
        (dict(remasking="nope"), "unknown remasking"),
        (
            dict(remasking="first_hitting", gen_length=8, steps=4, block_length=8),
            "steps must equal gen_length",
        ),
        (dict(steps=0), "steps must be >= 1"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_k=0), "top_k"),
        (dict(pad_id=MASK), "pad_id equals mask_id"),
    ],
)
def test_bad_settings_raise_user_error(kwargs, match):
    base = dict(gen_length=8, steps=8, block_length=8, mask_id=MASK)
    base.update(kwargs)
    with pytest.raises(UserError, match=match):
        generate(_plain, torch.tensor([[1, 2]]), **base)


def test_mask_id_outside_declared_vocabulary():
    model = Counting()
    model.config = SimpleNamespace(vocab_size=5)
    with pytest.raises(UserError, match="outside the model's vocabulary of 5"):
        generate(model, torch.tensor([[1]]), gen_length=4, steps=4, block_length=4)


def test_prompts_of_different_lengths_need_pad_id_and_attention_mask():
    with pytest.raises(UserError, match="pad_id"):
        generate(
            _plain,
            [torch.tensor([1, 2]), torch.tensor([3])],
            gen_length=4,
            steps=4,
            block_length=4,
            mask_id=MASK,
        )
    with pytest.raises(UserError, match="accepts attention_mask"):
        generate(
            _plain,
            [torch.tensor([1, 2]), torch.tensor([3])],
            gen_length=4,
            steps=4,
            block_length=4,
            mask_id=MASK,
            pad_id=0,
        )
    with pytest.raises(UserError, match="left padding"):
        generate(
            Counting(),
            torch.tensor([[1, 2]]),
            gen_length=4,
            steps=4,
            block_length=4,
            attention_mask=torch.tensor([[1, 0]]),
        )


def test_bad_model_output_is_a_user_error():
    with pytest.raises(UserError, match="logits"):
        generate(
            lambda ids: torch.zeros(ids.shape[0], V),
            torch.tensor([[1]]),
            gen_length=2,
            steps=2,
            block_length=2,
            mask_id=MASK,
        )
