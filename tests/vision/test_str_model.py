"""Encoders (SVTRv2 presets, timm), the model's shapes, checkpoints and zoo entries."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.checkpoint import load_model, save_model
from maskzoo.core.errors import UserError
from maskzoo.vision.str.encoder import SVTRv2Encoder, build_encoder
from maskzoo.vision.str.model import STRConfig, STRModel


def test_svtrv2_tiny_keeps_width_resolution():
    enc = SVTRv2Encoder("tiny")
    out = enc(torch.randn(2, 1, 32, 128))
    assert out.shape == (2, 64, 160)  # 2 x 32 grid of 160-d features


@pytest.mark.slow
def test_svtrv2_base_has_the_paper_dims():
    enc = SVTRv2Encoder("base")
    assert enc(torch.randn(1, 1, 32, 128)).shape == (1, 64, 384)
    model = STRModel(STRConfig.from_preset("base", encoder="svtrv2-base"))
    assert model.config.d_model == 384 and model.config.n_layers == 6


def test_timm_backbone_option():
    enc = build_encoder("timm:resnet10t", in_chans=1)
    out = enc(torch.randn(2, 1, 32, 128))
    assert out.shape[0] == 2 and out.shape[2] == enc.out_dim
    with pytest.raises(UserError):
        build_encoder("nope-1")


def test_model_shapes_and_zoo_contract():
    model = STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny")).eval()
    ids = torch.full((2, 26), model.mask_id)
    with torch.no_grad():
        assert model(ids, torch.randn(2, 1, 32, 128)).shape == (2, 26, 95)
        assert model(ids[:, :12]).shape == (2, 12, 95)  # ids alone: a blank crop (the core's model(ids) contract)
    with pytest.raises(UserError):
        STRConfig.from_preset("huge")
    with pytest.raises(UserError):
        STRConfig.from_dict({"encoder": "svtrv2-tiny", "colour": 1})


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny", causal=True)).eval()
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert isinstance(back, STRModel) and back.config == model.config
    x, ids = torch.randn(1, 1, 32, 128), torch.full((1, 5), model.mask_id)
    with torch.no_grad():
        assert torch.equal(model(ids, x), back(ids, x))


def test_zoo_names_are_registered():
    from maskzoo.core.registry import get_entry, list_models

    assert {"vision-str-mdiff", "vision-str-ar"} <= set(list_models())
    assert get_entry("vision-str-mdiff").card.name == "MODEL_CARD.md"
