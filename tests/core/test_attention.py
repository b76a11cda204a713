"""attention(): backends agree, masks do what they say, no NaN for rows that can attend to nothing."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.attention import (
    attention,
    block_causal_mask,
    block_diagonal_mask,
    causal_mask,
    padding_mask,
    resolve_backend,
    xformers_available,
)
from maskzoo.core.errors import UserError


def _qkv(b=2, h=4, hkv=4, lq=7, lk=7, d=8, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, lq, d, generator=g)
    k = torch.randn(b, hkv, lk, d, generator=g)
    v = torch.randn(b, hkv, lk, d, generator=g)
    return q.to(device), k.to(device), v.to(device)


def _masks(b=2, length=7):
    am = torch.ones(b, length, dtype=torch.long)
    am[0, :3] = 0  # left padding
    am[1, -2:] = 0  # right padding
    seg = torch.tensor([[0, 0, 0, 1, 1, 2, 2], [0, 1, 1, 1, -1, -1, -1]])[:b, :length]
    return {
        "none": None,
        "keys": padding_mask(am),
        "queries": padding_mask(am, queries=True),
        "packed": block_diagonal_mask(seg),
        "block_causal": block_causal_mask(length, 3),
        "per_head": torch.rand(b, 4, length, length, generator=torch.Generator().manual_seed(3)) > 0.5,
    }


def _reference(q, k, v, mask):
    """Loop-free restatement of the math in float64 (independent of the module)."""
    h = q.shape[1]
    k = k.repeat_interleave(h // k.shape[1], dim=1)
    v = v.repeat_interleave(h // v.shape[1], dim=1)
    s = (q.double() @ k.double().transpose(-1, -2)) / q.shape[-1] ** 0.5
    if mask is None:
        return (s.softmax(-1) @ v.double()).float()
    mask = mask.expand_as(s)
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.nan_to_num(s.softmax(-1), nan=0.0)
    return (p @ v.double()).float()


@pytest.mark.parametrize("mask_name", list(_masks()))
@pytest.mark.parametrize("hkv", [4, 2, 1])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_backends_match_reference(mask_name, hkv, causal, backend):
    q, k, v = _qkv(hkv=hkv)
    mask = _masks()[mask_name]
    full = mask
    if causal:
        c = causal_mask(7, 7)
        full = c if mask is None else mask & c
    out = attention(q, k, v, mask, causal=causal, backend=backend)
    assert out.shape == q.shape
    assert not out.isnan().any()
    torch.testing.assert_close(out, _reference(q, k, v, full), atol=1e-5, rtol=1e-5)


def test_sdpa_equals_eager_with_different_query_and_key_lengths():
    q, k, v = _qkv(lq=3, lk=9, hkv=2)
    mask = torch.rand(2, 1, 3, 9, generator=torch.Generator().manual_seed(1)) > 0.3
    for causal in (False, True):
        a = attention(q, k, v, mask, causal=causal, backend="eager")
        b = attention(q, k, v, mask, causal=causal, backend="sdpa")
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_rows_without_keys_are_zero_and_have_finite_gradients(backend):
    q, k, v = _qkv()
    q.requires_grad_(True)
    k.requires_grad_(True)
    am = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])  # row 1: all padding
    out = attention(q, k, v, padding_mask(am, queries=True), backend=backend)
    assert not out.isnan().any()
    assert torch.all(out[0, :, 4:] == 0) and torch.all(out[1] == 0)
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_gqa_equals_repeated_kv_heads():
    q, k, v = _qkv(hkv=2)
    out = attention(q, k, v)
    full = attention(q, k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1))
    torch.testing.assert_close(out, full, atol=0, rtol=0)
    # head h reads kv head h // 2
    torch.testing.assert_close(out[:, 1], attention(q[:, 1:2], k[:, :1], v[:, :1])[:, 0])
    torch.testing.assert_close(out[:, 2], attention(q[:, 2:3], k[:, 1:2], v[:, 1:2])[:, 0])


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_packed_sequences_equal_each_sequence_alone(backend):
    """Three sequences packed in one row with a block-diagonal mask == each attended alone."""
    lengths = [3, 5, 2]
    q, k, v = _qkv(b=1, lq=10, lk=10, hkv=2)
    seg = torch.repeat_interleave(torch.arange(3), torch.tensor(lengths))[None]  # [1, 10]
    packed = attention(q, k, v, block_diagonal_mask(seg), backend=backend)
    start = 0
    for n in lengths:
        sl = slice(start, start + n)
        alone = attention(q[:, :, sl], k[:, :, sl], v[:, :, sl], backend=backend)
        torch.testing.assert_close(packed[:, :, sl], alone, atol=1e-6, rtol=1e-6)
        start += n


def test_padding_mask_ignores_padded_keys():
    q, k, v = _qkv(b=1)
    am = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    out = attention(q, k, v, padding_mask(am))
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 5:] = 100.0  # garbage in padded keys/values changes nothing
    v2[:, :, 5:] = -50.0
    torch.testing.assert_close(attention(q, k2, v2, padding_mask(am)), out)
    torch.testing.assert_close(out[:, :, :5], attention(q[:, :, :5], k[:, :, :5], v[:, :, :5]), atol=1e-6, rtol=0)


def test_mask_helpers_shapes_and_values():
    am = torch.tensor([[0, 1, 1]])
    assert padding_mask(am).shape == (1, 1, 1, 3)
    assert padding_mask(am, queries=True).tolist() == [[[[False] * 3, [False, True, True], [False, True, True]]]]
    seg = torch.tensor([[0, 0, 1, -1]])
    assert block_diagonal_mask(seg)[0, 0].tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, True, False],
        [False, False, False, False],
    ]
    bc = block_causal_mask(5, 2)[0, 0].int().tolist()
    assert bc == [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert torch.equal(block_causal_mask(4, 1)[0, 0], torch.ones(4, 4).tril().bool())
    assert causal_mask(2, 4)[0, 0].int().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_causal_attention_ignores_the_future():
    q, k, v = _qkv(b=1)
    out = attention(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 4:] += 3.0
    v2[:, :, 4:] -= 3.0
    torch.testing.assert_close(attention(q, k2, v2, causal=True)[:, :, :4], out[:, :, :4])


def test_bad_arguments():
    q, k, v = _qkv()
    with pytest.raises(UserError, match="unknown attention backend"):
        attention(q, k, v, backend="flash3")
    with pytest.raises(TypeError, match="bool"):
        attention(q, k, v, torch.ones(1, 1, 7, 7))
    with pytest.raises(ValueError, match="multiple"):
        attention(q, k[:, :3], v[:, :3])
    assert resolve_backend(None, torch.device("cpu")) == "sdpa"
    if not xformers_available():
        with pytest.raises(UserError, match="xformers"):
            attention(q, k, v, backend="xformers")


@pytest.mark.cuda
@pytest.mark.skipif(not xformers_available(), reason="xformers needs CUDA and the xformers package")
@pytest.mark.parametrize("mask_name", list(_masks()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_xformers_matches_sdpa(mask_name, dtype):
    q, k, v = (t.to(dtype) for t in _qkv(hkv=2, device="cuda"))
    mask = _masks()[mask_name]
    mask = None if mask is None else mask.cuda()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    for causal in (False, True):
        a = attention(q, k, v, mask, causal=causal, backend="xformers")
        b = attention(q, k, v, mask, causal=causal, backend="sdpa")
        assert not a.isnan().any()
        torch.testing.assert_close(a.float(), b.float(), atol=tol, rtol=tol)
    assert resolve_backend(None, torch.device("cuda")) == "xformers"
