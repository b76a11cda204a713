"""generate() reproduces LLaDA's reference sampling loop token for token, and padded batches equal rows alone.

The oracle below is a plain re-implementation, written for this test from the published algorithm (LLaDA, Nie et
al. 2025, App. B; GSAI-ML/LLaDA generate.py): whole-sequence softmax/argmax every step, confidence -inf after the
block's end, and a Python loop over rows calling torch.topk on each row alone.
"""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.sampling import generate, topk_per_row
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

VOCAB, MASK = 24, 23


def oracle_generate(model, prompt, attention_mask, steps, gen_length, block_length, cfg_scale, mask_id):
    """Plain greedy low-confidence loop (temperature 0), one torch.topk per row."""
    batch, plen = prompt.shape
    x = torch.full((batch, plen + gen_length), mask_id, dtype=torch.long)
    x[:, :plen] = prompt
    if attention_mask is not None:
        attention_mask = torch.cat(
            [attention_mask, torch.ones(batch, gen_length, dtype=attention_mask.dtype)], 1
        )
    prompt_index = x != mask_id
    num_blocks = gen_length // block_length
    per_block = steps // num_blocks
    for blk in range(num_blocks):
        lo, hi = plen + blk * block_length, plen + (blk + 1) * block_length
        n = (x[:, lo:hi] == mask_id).sum(1).tolist()
        ks = [[c // per_block + (1 if i < c % per_block else 0) for i in range(per_block)] for c in n]
        for i in range(per_block):
            mask_index = x == mask_id
            if cfg_scale > 0:
                uncond = x.clone()
                uncond[prompt_index] = mask_id
                am = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
                both = model(torch.cat([x, uncond]), attention_mask=am)
                cond, unc = torch.chunk(both, 2)
                logits = unc + (cfg_scale + 1) * (cond - unc)
            else:
                logits = model(x, attention_mask=attention_mask)
            x0 = torch.argmax(logits, dim=-1)
            p = torch.softmax(logits, dim=-1)
            conf = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            conf[:, hi:] = float("-inf")
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, conf, torch.tensor(float("-inf"), dtype=conf.dtype))
            chosen = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(batch):
                chosen[j, torch.topk(conf[j], k=ks[j][i]).indices] = True
            x[chosen] = x0[chosen]
    return x


def tiny_transformer(seed: int = 0, dtype=torch.float32, init_std: float = 0.5) -> DiffusionTransformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(
        vocab_size=VOCAB,
        d_model=32,
        n_layers=2,
        n_heads=2,
        max_seq_len=64,
        mask_token_id=MASK,
        init_std=init_std,
    )
    return DiffusionTransformer(cfg).eval().to(dtype)


class Constant(torch.nn.Module):
    """Identical logits at every position: every confidence ties."""

    mask_id = MASK

    def forward(self, ids, attention_mask=None):
        logits = torch.zeros(*ids.shape, VOCAB)
        logits[..., 3] = 1.0
        return logits


class Quantised(torch.nn.Module):
    """A transformer whose logits are rounded to 0.5: many, but not all, confidences tie."""

    mask_id = MASK

    def __init__(self):
        super().__init__()
        self.inner = tiny_transformer(3, init_std=1.0)

    def forward(self, ids, attention_mask=None):
        return torch.round(self.inner(ids, attention_mask=attention_mask) * 2) / 2


def _prompt(batch: int, plen: int, seed: int) -> torch.Tensor:
    return torch.randint(0, MASK, (batch, plen), generator=torch.Generator().manual_seed(seed))


CASES = [  # batch, plen, gen_length, block_length, steps, cfg
    (1, 5, 16, 16, 16, 0.0),
    (3, 4, 16, 4, 8, 0.0),
    (2, 6, 8, 4, 12, 0.0),  # more steps than tokens: some steps reveal nothing
    (4, 3, 12, 6, 4, 0.0),  # several tokens per step, uneven split
    (2, 5, 8, 8, 8, 1.5),  # classifier-free guidance
]


@pytest.mark.parametrize("batch,plen,gen,block,steps,cfg", CASES)
@pytest.mark.parametrize(
    "make", [tiny_transformer, Constant, Quantised], ids=["transformer", "constant", "quantised"]
)
def test_matches_reference_loop(make, batch, plen, gen, block, steps, cfg):
    model = make()
    prompt = _prompt(batch, plen, seed=batch * 10 + plen)
    expected = oracle_generate(model, prompt, None, steps, gen, block, cfg, MASK)
    got = generate(model, prompt, gen_length=gen, steps=steps, block_length=block, cfg_scale=cfg)
    assert torch.equal(got, expected)


def test_matches_reference_in_bfloat16():
    """Low-precision logits make many probabilities equal; softmax stays in the logits' dtype as in the reference."""
    model = tiny_transformer(1, dtype=torch.bfloat16)
    prompt = _prompt(3, 4, seed=7)
    expected = oracle_generate(model, prompt, None, 8, 16, 8, 0.0, MASK)
    assert torch.equal(generate(model, prompt, gen_length=16, steps=8, block_length=8), expected)


@pytest.mark.parametrize("cfg", [0.0, 1.0])
def test_matches_reference_with_left_padding(cfg):
    model = tiny_transformer(2)
    prompt = _prompt(3, 6, seed=5)
    attn = torch.ones_like(prompt)
    attn[0, :2] = 0
    attn[2, :5] = 0
    prompt[attn == 0] = 0
    expected = oracle_generate(model, prompt, attn, 8, 16, 8, cfg, MASK)
    got = generate(model, prompt, gen_length=16, steps=8, block_length=8, cfg_scale=cfg, attention_mask=attn)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("cfg", [0.0, 2.0])
def test_row_alone_equals_row_in_padded_batch(cfg):
    model = tiny_transformer(4).double()
    g = torch.Generator().manual_seed(11)
    prompts = [torch.randint(0, MASK, (n,), generator=g) for n in (3, 7, 1, 5)]
    kw = dict(gen_length=12, steps=12, block_length=4, cfg_scale=cfg)
    batched = generate(model, prompts, pad_id=0, **kw)
    width = max(len(p) for p in prompts)
    for b, p in enumerate(prompts):
        alone = generate(model, p, **kw)[0]
        assert torch.equal(batched[b, width - len(p) :], alone), b
        assert torch.all(batched[b, : width - len(p)] == 0)


def test_padded_tensor_with_pad_id_equals_list():
    model = tiny_transformer(5).double()
    prompts = [torch.tensor([4, 5, 6]), torch.tensor([7])]
    padded = torch.tensor([[4, 5, 6], [0, 0, 7]])
    kw = dict(gen_length=8, steps=8, block_length=8)
    assert torch.equal(generate(model, prompts, pad_id=0, **kw), generate(model, padded, pad_id=0, **kw))


def test_topk_per_row_equals_a_loop_over_rows_with_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.randint(0, 3, (5, 40), generator=g).float()
        scores[:, :10] = float("-inf")
        counts = torch.randint(0, 6, (5,), generator=g).tolist()
        chosen = torch.zeros(5, 40, dtype=torch.bool)
        for rows, idx in topk_per_row(scores, counts):
            rows = torch.arange(5) if rows is None else rows
            chosen[rows.unsqueeze(1), idx] = True
        for b in range(5):
            ref = torch.zeros(40, dtype=torch.bool)
            ref[torch.topk(scores[b], counts[b]).indices] = True
            assert torch.equal(chosen[b], ref)
