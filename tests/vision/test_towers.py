"""Vision towers from timm and open_clip configs: layer choice, preprocessing from the tower's data config,
local weights, and clear errors for unknown names."""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.vision.projector import build_projector
from maskzoo.vision.towers import TowerConfig, VisionTower


def test_timm_vit_layer_choice_matches_the_unpruned_model():
    torch.manual_seed(0)
    ref = timm.create_model("test_vit", num_classes=0, img_size=32, patch_size=8).eval()
    x = torch.randn(2, 3, 32, 32)
    for layer in (-1, -2, 1):
        tower = VisionTower(TowerConfig("timm:test_vit", layer=layer, image_size=32, kwargs={"patch_size": 8}))
        tower.backbone.load_state_dict(ref.state_dict(), strict=False)  # pruned blocks are simply absent
        want = ref.forward_intermediates(x, indices=[layer], norm=False, output_fmt="NLC", intermediates_only=True)[0]
        assert torch.equal(tower.eval()(x), want)
        assert tower.num_tokens == 16 and tower.out_dim == ref.embed_dim
    assert len(VisionTower(TowerConfig("timm:test_vit", layer=-2, image_size=32)).backbone.blocks) == len(ref.blocks) - 1


def test_timm_convnet_feature_map_is_flattened_row_major():
    tower = VisionTower(TowerConfig("timm:test_resnet", layer=3, image_size=48)).eval()
    x = torch.randn(1, 3, 48, 48)
    fmap = tower.backbone.forward_intermediates(x, indices=[3], intermediates_only=True)[0]  # [1, C, 3, 3]
    assert tower(x).shape == (1, 9, fmap.shape[1])
    assert torch.equal(tower(x)[0, 5], fmap[0, :, 1, 2])  # token 5 = row 1, column 2


def test_open_clip_towers_from_config():
    native = VisionTower(TowerConfig("open_clip:ViT-B-32", layer=-2, image_size=32,
                                     kwargs={"layers": 3, "width": 64, "head_width": 32, "patch_size": 8}))
    assert (native.num_tokens, native.out_dim) == (16, 64)
    assert native.data_config["mean"][0] == pytest.approx(0.4815, abs=1e-4)  # OpenAI CLIP statistics
    siglip = VisionTower(TowerConfig("open_clip:ViT-B-16-SigLIP2", layer=-2, image_size=32,
                                     kwargs={"timm_model_name": "test_vit"}))
    assert siglip.data_config["mean"] == (0.5, 0.5, 0.5)  # SigLIP2's own preprocessing (pretrained config)
    assert siglip(torch.zeros(1, 3, 32, 32)).shape == (1, siglip.num_tokens, siglip.out_dim)


def test_preprocessing_follows_data_config_and_overrides():
    tower = VisionTower(TowerConfig("timm:test_resnet", layer=3, image_size=32, preprocess={"crop_pct": 1.0}))
    px = tower.preprocess([Image.new("RGB", (64, 40), (255, 0, 0))])
    assert px.shape == (1, 3, 32, 32)
    assert px[0, 0].mean().item() == pytest.approx((1 - 0.5) / 0.5, abs=1e-3)  # mean = std = 0.5 from timm's config
    custom = VisionTower(TowerConfig("timm:test_resnet", layer=3, image_size=32,
                                     preprocess={"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}))
    assert custom.preprocess([Image.new("RGB", (32, 32), (255, 0, 0))])[0, 0].mean().item() == pytest.approx(1.0)


def test_local_weights_file(tmp_path):
    from safetensors.torch import save_file

    src = timm.create_model("test_resnet", num_classes=0)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    tower = VisionTower(TowerConfig("timm:test_resnet", layer=3, image_size=32, weights=str(tmp_path / "w.safetensors")))
    assert torch.equal(tower.backbone.conv1[0].weight, src.conv1[0].weight)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(UserError, match="cannot read weights"):
        VisionTower(TowerConfig("timm:test_resnet", layer=3, weights=str(tmp_path / "bad.safetensors")))


@pytest.mark.parametrize("name, msg", [("timm:no_such_net", "timm does not know"),
                                       ("open_clip:No-Such-CLIP", "open_clip does not know"),
                                       ("resnet18", "write 'timm:<name>'")])
def test_unknown_towers_are_user_errors(name, msg):
    with pytest.raises(UserError, match=msg):
        VisionTower(TowerConfig(name))


def test_projectors():
    mlp = build_projector("mlp2x_gelu", 8, 16)
    assert [type(m).__name__ for m in mlp] == ["Linear", "GELU", "Linear"]
    assert set(mlp.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}  # LLaDA-V's mm_projector keys
    assert set(build_projector("linear", 8, 16).state_dict()) == {"weight", "bias"}
    assert len(build_projector("mlp3x_gelu", 8, 16)) == 5
    x = torch.randn(2, 5, 8)
    assert torch.allclose(mlp(x), mlp[2](torch.nn.functional.gelu(mlp[0](x))))
    with pytest.raises(UserError, match="unknown projector"):
        build_projector("qformer", 8, 16)
