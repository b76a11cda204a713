"""A tiny checkpoint in the published LLaDA-V layout loads strictly and computes what that layout means."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from _vision_fixtures import llada_reference_dir, make_llava_llada_dir, siglip_reference
from PIL import Image

from maskzoo.core.checkpoint import load_model
from maskzoo.core.errors import UserError
from maskzoo.vision import anyres
from maskzoo.vision.caption import Captioner
from maskzoo.vision.checkpoint import load_vision_model


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llava") / "LLaDA-V-tiny"
    return path, make_llava_llada_dir(path)


def test_loads_and_matches_the_layout_semantics(llava_dir, tmp_path):
    path, t = llava_dir
    model, tok = load_vision_model(path)
    assert model.config.projector == "mlp2x_gelu" and model.image_newline is not None
    assert model.config.template == "llava_llada"
    assert tok.mask_id == tok.token_id("<|mdm_mask|>") == model.mask_id
    pixels = torch.randn(2, 3, 32, 32)
    # tower: SigLIP (HF semantics) after its last stored layer, i.e. the original penultimate layer
    ref = siglip_reference(t, pixels)
    assert torch.allclose(model.tower(pixels), ref, atol=1e-5)
    # projector mlp2x_gelu then the image_newline vector (spatial_unpad, one view)
    proj = F.linear(F.gelu(F.linear(ref, t["model.mm_projector.0.weight"], t["model.mm_projector.0.bias"])),
                    t["model.mm_projector.2.weight"], t["model.mm_projector.2.bias"])
    proj = torch.cat([proj, t["model.image_newline"].expand(2, 1, -1)], dim=1)
    assert torch.allclose(model.encode_images(pixels), proj, atol=1e-5)
    # language model: the same tensors in the original LLaDA layout, read by the core's (reference-checked) loader
    lm = load_model(llada_reference_dir(t, tmp_path / "llada", tok.vocab_size))
    ids = torch.randint(0, tok.vocab_size, (2, 12))
    assert torch.allclose(model.lm(ids), lm(ids), atol=1e-5)


def test_captioner_runs_on_it(llava_dir):
    cap = Captioner.from_pretrained(llava_dir[0])
    out = cap.caption([Image.new("RGB", (40, 30), (200, 10, 10))], gen_length=8, steps=4, block_length=4)
    assert isinstance(out[0], str)
    prompt = cap.prompt
    assert prompt.startswith("<image>")


def test_strict_about_tensors(llava_dir, tmp_path):
    from safetensors.torch import save_file

    path, t = llava_dir
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("config.json", "tokenizer.json"):
        (bad / f).write_bytes((path / f).read_bytes())
    (bad / "siglip-tiny").mkdir()
    (bad / "siglip-tiny" / "config.json").write_bytes((path / "siglip-tiny" / "config.json").read_bytes())
    save_file({k: v for k, v in t.items() if k != "model.mm_projector.2.bias"}, str(bad / "model.safetensors"))
    with pytest.raises(UserError, match="missing"):
        load_vision_model(bad)
    save_file({**t, "model.surprise.weight": torch.zeros(1)}, str(bad / "model.safetensors"))
    with pytest.raises(UserError, match="unexpected tensors"):
        load_vision_model(bad)
    (bad / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:200])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_vision_model(bad)
    (bad / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes())
    cfg = json.loads((path / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "rope_scaling": {"type": "linear", "factor": 2}}))
    with pytest.raises(UserError, match="rope_scaling"):
        load_vision_model(bad)


def test_a_hugging_face_siglip_weights_file_loads_into_a_timm_tower(llava_dir, tmp_path):
    from _vision_fixtures import SIGLIP, TOWER
    from safetensors.torch import save_file

    from maskzoo.vision.towers import TowerConfig, VisionTower

    _, t = llava_dir
    hf = {"vision_model." + k[len(TOWER):]: v for k, v in t.items() if k.startswith(TOWER)}
    save_file(hf, str(tmp_path / "siglip.safetensors"))
    kwargs = {"embed_dim": 16, "depth": SIGLIP["num_hidden_layers"] - 1, "num_heads": 2, "mlp_ratio": 40.5 / 16,
              "patch_size": 8, "act_layer": "gelu_tanh"}
    tower = VisionTower(TowerConfig("timm:vit_base_patch16_siglip_224", layer=-1, image_size=32,
                                    weights=str(tmp_path / "siglip.safetensors"), kwargs=kwargs))
    pixels = torch.randn(1, 3, 32, 32)
    assert torch.allclose(tower(pixels), siglip_reference(t, pixels), atol=1e-5)


def test_cli_caption_with_a_llava_llada_checkpoint(llava_dir, tmp_path, capsys):
    from maskzoo.core.cli import main

    img = tmp_path / "x.png"
    Image.new("RGB", (20, 20), (0, 200, 0)).save(img)
    rc = main(["vision", "caption", str(img), "--checkpoint", str(llava_dir[0]), "--steps", "2", "--length", "4"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith(f"{img}\t")


@pytest.mark.parametrize("change, needle", [
    ({"num_hidden_layers": "2"}, "num_hidden_layers"),
    ({"hidden_size": None}, "hidden_size"),
    ({"vocab_size": 10**12}, "vocab_size"),
    ({"num_hidden_layers": 1000, "hidden_size": 60000, "intermediate_size": 200000}, "parameters"),
    ({"rope_theta": "big"}, "rope_theta"),
    ({"mm_vision_tower": "../../outside"}, "outside the checkpoint"),
    ({"mm_spatial_pool_mode": "median"}, "mm_spatial_pool_mode"),
])
def test_config_fields_are_checked_before_anything_is_built(llava_dir, tmp_path, change, needle):
    path, _ = llava_dir
    bad = tmp_path / "bad"
    shutil.copytree(path, bad, dirs_exist_ok=True)  # copies: a symlink out of the checkpoint would be refused
    cfg = {k: v for k, v in json.loads((path / "config.json").read_text()).items() if change.get(k, 0) is not None}
    cfg.update({k: v for k, v in change.items() if v is not None})
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=needle) as e:
        load_vision_model(bad)
    assert "\n" not in str(e.value)


def test_maskzoo_vision_config_fields_are_checked(tmp_path):
    from _vision_fixtures import tiny_vlm

    from maskzoo.vision.checkpoint import save_vision_model

    model, tok = tiny_vlm()
    path = save_vision_model(model, tok, tmp_path / "m")
    meta = json.loads((path / "config.json").read_text())
    for field, value, needle in (("n_layers", 10**6, "n_layers"), ("d_model", "32", "d_model")):
        broken = json.loads(json.dumps(meta))
        broken["config"]["lm"][field] = value
        (path / "config.json").write_text(json.dumps(broken))
        with pytest.raises(UserError, match=needle):
            load_vision_model(path)


def test_a_tower_whose_views_are_not_grid_times_patch(tmp_path):
    """SigLIP at 36 px with 8-px patches: 4 x 4 positions, the last 4 pixels of each view unused (as 384 / 14)."""
    from _vision_fixtures import SIGLIP

    path = tmp_path / "odd"
    t = make_llava_llada_dir(path)
    (path / "siglip-tiny" / "config.json").write_text(json.dumps({**SIGLIP, "image_size": 36}))
    cfg = json.loads((path / "config.json").read_text())
    cfg["image_grid_pinpoints"] = [[36, 36], [36, 72], [72, 36]]  # multiples of the 36-px views
    (path / "config.json").write_text(json.dumps(cfg))
    model, _ = load_vision_model(path)
    assert model.tower.image_size == (36, 36) and model.tower.num_tokens == 16
    pixels = torch.randn(2, 3, 36, 36)
    assert torch.allclose(model.tower(pixels), siglip_reference(t, pixels), atol=1e-5)
    wide = Image.new("RGB", (70, 30), (10, 200, 30))  # best fit 72 x 36: 2 x 1 tiles of 36 px
    views, grid = anyres.views(wide, 36, model.anyres)
    assert grid == (2, 1) and [v.size for v in views] == [(36, 36)] * 3
    feats = model.encode_image_tiled(wide)
    assert feats.shape[0] == model.image_token_count(wide) == 16 + 4 * (8 + 1)  # base + 4 rows of 8 + newline
