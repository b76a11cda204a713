"""DiffusionTransformer: shapes, padding/packing invariances, bidirectional vs causal, embeddings path, errors."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.attention import block_diagonal_mask
from maskzoo.core.errors import UserError
from maskzoo.core.kv_cache import KVCache
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

V, MASK = 40, 39


def _model(seed: int = 0, **kw) -> DiffusionTransformer:
    torch.manual_seed(seed)
    args = dict(vocab_size=V, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64, mask_token_id=MASK)
    args.update(kw)
    return DiffusionTransformer(TransformerConfig(**args)).eval()


def _ids(b: int, n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V - 1, (b, n), generator=torch.Generator().manual_seed(seed))


def test_shapes_dtype_and_properties():
    m = _model()
    out = m(_ids(3, 11))
    assert out.shape == (3, 11, V) and out.dtype == torch.float32
    assert m.mask_id == MASK
    assert m.config.mlp_hidden == 128  # 8/3 * 32 rounded up to a multiple of 64
    assert m.blocks[0].attn.k_proj.weight.shape == (2 * 8, 32)  # GQA: 2 kv heads of dim 8
    assert not any(n.endswith("bias") for n, _ in m.named_parameters())
    assert m.device.type == "cpu" and m.dtype == torch.float32


def test_left_padding_gives_the_unpadded_logits():
    m = _model()
    a, b = _ids(1, 9, seed=2), _ids(1, 5, seed=3)
    batch = torch.cat([a, torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1)])  # [2, 9], row 1 left-padded
    am = torch.ones(2, 9, dtype=torch.long)
    am[1, :4] = 0
    with torch.no_grad():
        out = m(batch, attention_mask=am)
        torch.testing.assert_close(out[0], m(a)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(out[1, 4:], m(b)[0], atol=1e-5, rtol=0)


def test_right_padding_content_is_ignored():
    m = _model()
    ids = _ids(1, 8)
    am = torch.tensor([[1] * 6 + [0] * 2])
    other = ids.clone()
    other[0, 6:] = torch.tensor([5, 7])
    with torch.no_grad():
        torch.testing.assert_close(m(ids, attention_mask=am)[:, :6], m(other, attention_mask=am)[:, :6])
        torch.testing.assert_close(m(ids, attention_mask=am)[:, :6], m(ids[:, :6]), atol=1e-5, rtol=0)


def test_packed_sequences_equal_each_sequence_alone():
    """Packing with a block-diagonal mask and per-segment positions reproduces each sequence's own logits."""
    m = _model()
    seqs = [_ids(1, n, seed=10 + n) for n in (4, 7, 3)]
    packed = torch.cat(seqs, 1)  # [1, 14]
    seg = torch.cat([torch.full((1, s.shape[1]), i) for i, s in enumerate(seqs)], 1)
    pos = torch.cat([torch.arange(s.shape[1]) for s in seqs])[None]
    with torch.no_grad():
        out = m(packed, attention_mask=block_diagonal_mask(seg), position_ids=pos)
        start = 0
        for s in seqs:
            n = s.shape[1]
            torch.testing.assert_close(out[:, start : start + n], m(s), atol=1e-5, rtol=0)
            start += n


def test_bidirectional_vs_causal():
    ids = _ids(1, 10)
    later = ids.clone()
    later[0, 7] = (later[0, 7] + 1) % (V - 1)
    with torch.no_grad():
        bi = _model()
        assert not torch.allclose(bi(ids)[:, :7], bi(later)[:, :7])  # earlier positions see the future
        ar = _model(causal=True, mask_token_id=None)
        torch.testing.assert_close(ar(ids)[:, :7], ar(later)[:, :7])  # ... unless causal
        assert not torch.allclose(ar(ids)[:, 7:], ar(later)[:, 7:])
    with pytest.raises(UserError, match="no mask token"):
        _ = ar.mask_id


def test_inputs_embeds_path_equals_ids_path():
    m = _model()
    ids = _ids(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(inputs_embeds=m.embed_tokens(ids)), m(ids))
        prefix = torch.randn(2, 3, 32)  # e.g. projected image features
        out = m(inputs_embeds=torch.cat([prefix, m.embed_tokens(ids)], 1))
    assert out.shape == (2, 9, V)
    with pytest.raises(ValueError, match="exactly one"):
        m(ids, inputs_embeds=m.embed_tokens(ids))


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_attention_backends_agree_in_the_model(backend):
    ids = _ids(2, 9)
    am = torch.ones(2, 9, dtype=torch.long)
    am[0, :2] = 0
    m = _model()
    with torch.no_grad():
        ref = m(ids, attention_mask=am)
        m.config.attention_backend = backend
        torch.testing.assert_close(m(ids, attention_mask=am), ref, atol=1e-5, rtol=0)


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    import maskzoo.core.transformer as tr

    calls = []
    real = tr.checkpoint
    monkeypatch.setattr(tr, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    ids = _ids(2, 8)
    grads = []
    for ckpt in (False, True):
        m = _model().train()
        m.gradient_checkpointing = ckpt
        m(ids).logsumexp(-1).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)
    assert len(calls) == 2  # one per block, only in the checkpointed run


def test_tied_embeddings_share_one_tensor():
    m = _model(tie_embeddings=True)
    assert m.lm_head.weight is m.embed.weight
    assert m.num_parameters() == sum(p.numel() for p in m.parameters())


def test_kv_cache_reproduces_the_full_forward_where_nothing_changed():
    """Filling a cache, then feeding a block (dual cache) or the block and its suffix after a cropped prefix
    (prefix cache) of an unchanged sequence gives the full forward's logits: keys cached after RoPE are exact."""
    m = _model()
    x = _ids(2, 20)
    full = m(x)  # [2, 20, V]
    cache = KVCache()
    assert torch.allclose(m(x, kv_cache=cache), full, atol=1e-5) and cache.length == 20
    dual = m(x[:, 8:12], kv_cache=cache, cache_position=8)  # the block only
    assert torch.allclose(dual, full[:, 8:12], atol=1e-5) and cache.length == 20
    cache.crop(8)
    prefix = m(x[:, 8:], kv_cache=cache, cache_position=8, logits_slice=slice(0, 4))
    assert prefix.shape == (2, 4, V) and torch.allclose(prefix, full[:, 8:12], atol=1e-5)
    # the cache now holds stale keys of a changed block: feeding the changed block updates them
    y = x.clone()
    y[:, 9] = 3
    dual_changed = m(y[:, 8:12], kv_cache=cache, cache_position=8)
    assert not torch.allclose(dual_changed, dual, atol=1e-3)


def test_kv_cache_with_padding_and_embeddings_matches_the_padded_forward():
    m = _model()
    a, b = _ids(1, 12, seed=2), _ids(1, 8, seed=3)
    ids = torch.cat([a, torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1)])  # [2, 12] row 1 left-padded
    attn = torch.ones(2, 12, dtype=torch.long)
    attn[1, :4] = 0
    full = m(ids, attention_mask=attn)  # [2, 12, V]
    cache = KVCache()
    m(inputs_embeds=m.embed_tokens(ids), attention_mask=attn, kv_cache=cache)
    cache.crop(7)
    rest = m(inputs_embeds=m.embed_tokens(ids[:, 7:]), attention_mask=attn, kv_cache=cache, cache_position=7)
    assert torch.allclose(rest, full[:, 7:], atol=1e-5)
    with pytest.raises(UserError, match="attention_mask covers 7 positions; expected 12"):
        m(ids[:, 7:], attention_mask=attn[:, :7], kv_cache=cache, cache_position=7)


def test_kv_cache_incremental_decoding_of_a_causal_model():
    m = _model(causal=True, mask_token_id=None)
    x = _ids(2, 10)
    full = m(x)  # [2, 10, V]
    cache = KVCache()
    steps = [m(x[:, :4], kv_cache=cache)] + [m(x[:, i : i + 1], kv_cache=cache, cache_position=i) for i in range(4, 10)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_kv_cache_write_rules():
    cache = KVCache()
    k = torch.randn(1, 2, 5, 4)
    cache.write(0, 0, k, k)
    with pytest.raises(UserError, match="gap"):
        cache.write(0, 7, k, k)
    with pytest.raises(UserError, match="rows"):
        cache.write(0, 0, torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4))
    k2 = torch.randn(1, 2, 4, 4)
    keys, _ = cache.write(0, 3, k2, k2)  # overlaps the end: extended
    assert keys.shape[2] == 7 and torch.equal(keys[:, :, :3], k[:, :, :3]) and torch.equal(keys[:, :, 3:], k2)


def test_user_errors():
    m = _model()
    with pytest.raises(UserError, match="longer than the model's context of 64"):
        m(_ids(1, 65))
    with pytest.raises(UserError, match="token id 40 is outside"):
        m(torch.tensor([[1, 40]]))
    with pytest.raises(UserError, match="mask_token_id 40 is outside"):
        TransformerConfig(vocab_size=V, d_model=32, n_layers=1, n_heads=4, mask_token_id=40)
    with pytest.raises(UserError, match="needs mask_token_id"):
        TransformerConfig(vocab_size=V, d_model=32, n_layers=1, n_heads=4)
    with pytest.raises(UserError, match="not divisible"):
        TransformerConfig(vocab_size=V, d_model=30, n_layers=1, n_heads=4, mask_token_id=1)
    with pytest.raises(UserError, match=r"unknown key\(s\) \['n_layer'\]"):
        TransformerConfig.from_dict({"vocab_size": V, "d_model": 32, "n_layer": 1, "n_heads": 4})


def test_config_round_trip():
    cfg = _model(tie_embeddings=True).config
    assert TransformerConfig.from_dict(cfg.to_dict()) == cfg


def test_bfloat16_forward_is_close_to_float32():
    m = _model()
    ids = _ids(2, 12)
    with torch.no_grad():
        ref = m(ids)
        low = m.to(torch.bfloat16)(ids)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()
