"""Adapters: output shapes, time downsampling, layer weighting, LoRA's exact start."""

from __future__ import annotations

import torch
from torch import nn

from maskzoo.audio.adapters import AcousticQFormer, SemanticAdapter, WindowQFormer, apply_lora
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig


def test_semantic_adapter_downsamples_time_by_four_and_projects():
    ad = SemanticAdapter(24, 40)
    h = torch.randn(3, 103, 24)  # 103 = 4 * 25 + 3: the last 3 frames are dropped
    y = ad(h)
    assert y.shape == (3, 25, 40) and ad.num_tokens(103) == 25
    # LayerNorm output: zero mean, unit variance per position (weight 1, bias 0 at init)
    assert torch.allclose(y.mean(-1), torch.zeros(3, 25), atol=1e-5)
    # output position k depends on frames near 4k only (receptive field 4k-5 .. 4k+6)
    h2 = h.clone()
    h2[:, 60:] += 1.0
    changed = (ad(h2) - y).abs().amax(dim=(0, 2)) > 1e-6
    assert not changed[:13].any() and changed[16:].all()


def test_acoustic_qformer_weights_layers_per_query():
    ad = AcousticQFormer(16, 32, taps=[0, 2], n_queries=5, n_heads=2)
    states = [torch.randn(2, 30, 16) for _ in range(4)]
    assert ad(states).shape == (2, 5, 32) and ad.num_tokens == 5
    # put all weight on tap 0: tap 2 no longer matters
    with torch.no_grad():
        ad.layer_weights.copy_(torch.tensor([[50.0, -50.0]] * 5))
    other = list(states)
    other[2] = torch.randn(2, 30, 16)
    assert torch.allclose(ad(states), ad(other), atol=1e-5)
    other[0] = torch.randn(2, 30, 16)
    assert not torch.allclose(ad(states), ad(other), atol=1e-3)


def test_window_qformer_gives_queries_per_window_and_stays_local():
    ad = WindowQFormer(16, 32, window=17, n_queries=4, n_heads=2)
    h = torch.randn(2, 50, 16)  # 3 windows (the last padded)
    y = ad(h)
    assert y.shape == (2, 12, 32) and ad.num_tokens(50) == 12
    h2 = h.clone()
    h2[:, 20:30] += 1.0  # inside window 1 only
    diff = (ad(h2) - y).abs().amax(dim=(0, 2)) > 1e-6
    assert diff.tolist() == [False] * 4 + [True] * 4 + [False] * 4


def test_lora_starts_at_the_base_model_and_trains_only_its_factors():
    cfg = TransformerConfig(vocab_size=20, d_model=32, n_layers=2, n_heads=2, mask_token_id=1)
    torch.manual_seed(0)
    lm = DiffusionTransformer(cfg)
    ids = torch.randint(0, 20, (2, 7))
    before = lm(ids)
    names = apply_lora(lm, rank=4)
    assert len(names) == 6 and all(n.endswith(("q_proj", "k_proj", "v_proj")) for n in names)
    assert torch.allclose(lm(ids), before, atol=1e-6)
    lora = [p for n, p in lm.named_parameters() if "lora_" in n]
    assert len(lora) == 12
    with torch.no_grad():
        for p in lora:
            p.add_(0.1)
    assert not torch.allclose(lm(ids), before, atol=1e-4)
    assert isinstance(lm.blocks[0].attn.q_proj.base, nn.Linear)
