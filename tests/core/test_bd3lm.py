"""Block diffusion (BD3-LM): the [x_t ; x_0] mask against its definition, the limits block size 1 (AR) and L
(masked diffusion), the loss in analytic cases, and exact KV-cached sampling."""

from __future__ import annotations

import math

import pytest
import torch

from maskzoo.core.attention import block_causal_mask
from maskzoo.core.block_diffusion import BD3LMLoss, bd3lm_attention_mask, bd3lm_generate, bd3lm_logits
from maskzoo.core.errors import UserError
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

V, MASK = 20, 19


def _model(seed: int = 0) -> DiffusionTransformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=V, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64,
                            mask_token_id=MASK, init_std=0.3)
    return DiffusionTransformer(cfg).eval()


def _brute_force_mask(length: int, bs: int) -> torch.Tensor:
    """Arriola et al. 2025, Sec. 3.3, one entry at a time: query i, key j over [x_t ; x_0]."""
    m = torch.zeros(2 * length, 2 * length, dtype=torch.bool)
    for i in range(2 * length):
        for j in range(2 * length):
            qi, kj = i % length // bs, j % length // bs
            if i < length and j < length:
                m[i, j] = qi == kj  # block-diagonal: noisy attends its own noisy block
            elif i < length:
                m[i, j] = kj < qi  # offset block-causal: noisy attends earlier clean blocks
            elif j >= length:
                m[i, j] = kj <= qi  # block-causal: clean attends clean blocks up to its own
    return m


@pytest.mark.parametrize("length, bs", [(8, 1), (8, 2), (12, 4), (8, 8), (6, 3)])
def test_mask_equals_its_definition(length, bs):
    assert torch.equal(bd3lm_attention_mask(length, bs)[0, 0], _brute_force_mask(length, bs))


def test_block_size_must_divide_the_length():
    with pytest.raises(UserError, match="divide"):
        bd3lm_attention_mask(10, 4)


def test_block_size_length_is_plain_masked_diffusion():
    m = _model()
    x0 = torch.randint(0, MASK, (2, 12))
    xt = x0.masked_fill(torch.rand(2, 12, generator=torch.Generator().manual_seed(0)) < 0.5, MASK)
    assert torch.allclose(bd3lm_logits(m, xt, x0, 12), m(xt), atol=1e-5)


def test_block_size_one_is_autoregressive():
    """A masked token at position i sees only the clean tokens before it: p(x_i | x_<i) under a causal pass."""
    m = _model()
    x0 = torch.randint(0, MASK, (1, 10))
    xt = torch.full_like(x0, MASK)
    logits = bd3lm_logits(m, xt, x0, 1)  # [1, 10, V]
    for i in range(10):
        ids = torch.cat([x0[:, :i], xt[:, i : i + 1]], dim=1)  # [1, i+1]
        causal = block_causal_mask(i + 1, 1)  # [1, 1, i+1, i+1]
        assert torch.allclose(logits[:, i], m(ids, attention_mask=causal)[:, -1], atol=1e-5)


class Uniform(torch.nn.Module):
    """Uniform logits over V tokens: cross-entropy log V everywhere."""

    def forward(self, ids, attention_mask=None, position_ids=None, logits_slice=None):
        n = ids.shape[1] // 2
        return torch.zeros(ids.shape[0], n, V, requires_grad=True)


def test_loss_of_a_uniform_model_at_full_masking_is_log_v():
    loss_fn = BD3LMLoss(MASK, 4, t_range=(0.999999, 1.0), t_min=0.0)
    loss, stats = loss_fn(Uniform(), {"input_ids": torch.randint(0, MASK, (3, 16))})
    assert stats["mask_rate"] == 1.0 and math.isclose(loss.item(), math.log(V), rel_tol=1e-5)


def test_loss_expectation_is_the_nelbo_of_a_uniform_model():
    """E_t[(1/t) * #masked(t) * log V] / L = log V for the linear schedule (alpha = 1 - t)."""
    loss_fn = BD3LMLoss(MASK, 4, t_min=1e-3, generator=torch.Generator().manual_seed(0))
    values = [loss_fn(Uniform(), {"input_ids": torch.randint(0, MASK, (64, 16))})[0].item() for _ in range(20)]
    assert abs(sum(values) / len(values) - math.log(V)) < 0.05 * math.log(V)


def test_loss_trains_a_model_and_rejects_bad_settings():
    m = _model()
    loss_fn = BD3LMLoss(MASK, 4, t_range=(0.3, 0.8))
    loss, _ = loss_fn(m, {"input_ids": torch.randint(0, MASK, (2, 16))})
    loss.backward()
    assert m.embed.weight.grad is not None and torch.isfinite(loss)
    with pytest.raises(UserError):
        BD3LMLoss(MASK, 4, t_range=(0.8, 0.3))
    with pytest.raises(UserError, match="multiple of block_size"):
        loss_fn(m, {"input_ids": torch.randint(0, MASK, (2, 10))})


def _reference_block_logits(m, x, start, end, bs):
    """Logits of the block [start, end) from the uncached [x_t ; x_0] forward of the training mask."""
    length = -(-x.shape[1] // bs) * bs
    xt = torch.full((x.shape[0], length), MASK)
    xt[:, : x.shape[1]] = x
    x0 = xt.clone()
    return bd3lm_logits(m, xt, x0, bs)[:, start:end]


@pytest.mark.parametrize("prompt_len", [4, 6])
def test_cached_sampling_is_exact(prompt_len):
    """Greedy block sampling with the KV cache equals the same sampler on uncached training-mask logits."""
    m = _model(1)
    prompt = torch.randint(0, MASK, (2, prompt_len), generator=torch.Generator().manual_seed(2))
    stats: dict = {}
    out = bd3lm_generate(m, prompt, gen_length=16 - prompt_len, block_size=4, steps=4, stats=stats)
    assert not bool((out == MASK).any())
    # replay: decode block by block with uncached logits, one token per step by confidence
    x = torch.full_like(out, MASK)
    x[:, :prompt_len] = prompt
    first = prompt_len // 4 * 4
    for start in range(first, out.shape[1], 4):
        end = min(start + 4, out.shape[1])
        while bool((x[:, start:end] == MASK).any()):
            logits = _reference_block_logits(m, x, start, end, 4)[:, : end - start]  # [B, b, V]
            logits[..., MASK] = float("-inf")
            p = torch.softmax(logits, -1)
            conf, tok = p.max(-1)  # [B, b]
            conf = conf.masked_fill(x[:, start:end] != MASK, -1.0)
            j = conf.argmax(-1)  # [B]
            rows = torch.arange(x.shape[0])
            keep = x[rows, start + j] == MASK
            x[rows[keep], start + j[keep]] = tok[rows, j][keep]
    assert torch.equal(out, x)
    blocks = (16 - first) // 4
    steps = sum(min(4, min(s + 4, 16) - max(s, prompt_len)) for s in range(first, 16, 4))  # one token per step
    assert stats["forwards"] == (1 if first else 0) + steps + (blocks - 1)


def test_eos_stops_block_generation():
    m = _model(3)
    prompt = torch.randint(0, MASK, (1, 4), generator=torch.Generator().manual_seed(2))
    full = bd3lm_generate(m, prompt, gen_length=16, block_size=4, steps=4)
    eos = int(full[0, 5])
    stats: dict = {}
    out = bd3lm_generate(m, prompt, gen_length=16, block_size=4, steps=4, eos_id=eos, pad_id=0, stats=stats)
    gen = out[0, 4:].tolist()
    assert gen[: gen.index(eos) + 1] == full[0, 4 : 4 + gen.index(eos) + 1].tolist()
    assert all(t == 0 for t in gen[gen.index(eos) + 1 :]) and stats["forwards"] == 1 + 4
