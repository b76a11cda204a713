"""Stage 0 (tower pre-training): labels match the rendered scenes, the strict hold-out holds, the exported
weights load (pruned) into a tower that reproduces the trained features, and a short run learns."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from maskzoo.core.errors import UserError
from maskzoo.vision.scenes import COLOURS, HELD_OUT_PAIRS, SHAPES, SIZES, rgb_distance
from maskzoo.vision.tower_pretrain import (
    AttributeCollator,
    AttributeScenes,
    TowerWithHeads,
    attribute_loss,
    pretrain_tower_from_recipe,
)
from maskzoo.vision.towers import TowerConfig, VisionTower


def _cell_mean(image, cell: int) -> torch.Tensor:
    """Median RGB of the bright pixels in grid cell ``cell``: the object's interior, not the dark background
    (the median ignores the Lanczos ringing at the object's edges)."""
    x = torch.tensor(list(image.getdata()), dtype=torch.float32).view(image.height, image.width, 3)
    s = image.width // 3
    r, c = divmod(cell, 3)
    px = x[r * s:(r + 1) * s, c * s:(c + 1) * s].reshape(-1, 3)
    peak = px.max(-1).values
    return px[peak >= 0.7 * peak.max()].median(0).values


def test_labels_describe_the_rendered_scene():
    data = AttributeScenes(seed=3)
    for i in range(20):
        image, shape, size, rgb = data[i]
        assert image.size == (48, 48)
        occupied = shape > 0
        assert 1 <= int(occupied.sum()) <= 4
        assert torch.equal(occupied, size > 0) and torch.equal(occupied, rgb.abs().sum(-1) > 0)
        assert int(shape.max()) <= len(SHAPES) and int(size.max()) <= len(SIZES)
        for cell in occupied.nonzero().flatten().tolist():  # the labelled colour is the one drawn (jitter +-12)
            assert (_cell_mean(image, cell) / 255 - rgb[cell]).abs().max() < 0.1
        for cell in (~occupied).nonzero().flatten().tolist():  # empty cells are background (dark)
            assert _cell_mean(image, cell).max() <= 60 + 12
    a, b = AttributeScenes(seed=3)[7], AttributeScenes(seed=3)[7]
    assert list(a[0].getdata()) == list(b[0].getdata()) and torch.equal(a[1], b[1])


def test_no_held_out_pair_is_ever_drawn_near_its_colour():
    data = AttributeScenes(seed=0, exclusion=80.0)
    closest = {pair: float("inf") for pair in HELD_OUT_PAIRS}
    n_objects = 0
    for i in range(1500):
        _, shape, _, rgb = data[i]
        for cell in (shape > 0).nonzero().flatten().tolist():
            n_objects += 1
            s = SHAPES[int(shape[cell]) - 1]
            for c, hs in HELD_OUT_PAIRS:
                if hs == s:
                    closest[(c, s)] = min(closest[(c, s)], rgb_distance((rgb[cell] * 255).tolist(), COLOURS[c]))
    assert n_objects > 3000
    assert min(closest.values()) >= 80.0 - 1e-3
    assert max(closest.values()) < 120  # ... while shapes are drawn right up to the edge of each ball
    assert not data.allowed("triangle", COLOURS["white"]) and data.allowed("circle", COLOURS["white"])


def test_heads_need_one_feature_per_cell():
    with pytest.raises(UserError, match="3x3 grid"):
        TowerWithHeads(VisionTower(TowerConfig("timm:test_resnet", layer=2, image_size=48)))


def test_exported_weights_reload_pruned_and_reproduce_features(tmp_path):
    out = pretrain_tower_from_recipe(None, [f"run_dir={tmp_path / 'run'}", "batch_size=8", "eval_scenes=12",
                                            "train.max_steps=2", "train.warmup_steps=0", "train.progress=false"])
    assert out == tmp_path / "run" / "tower.safetensors"
    cfg = dict(name="timm:test_resnet", layer=3, image_size=48, preprocess={"crop_pct": 1.0})
    fresh = VisionTower(TowerConfig(**cfg)).eval()
    loaded = VisionTower(TowerConfig(**cfg, weights=str(out))).eval()
    x = torch.randn(2, 3, 48, 48)
    assert not torch.allclose(loaded(x), fresh(x))  # trained, and the trained weights are what loads
    last = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    ref = TowerWithHeads(VisionTower(TowerConfig(**cfg)))
    ref.load_state_dict(load_file(str(last / "model.safetensors")))
    assert torch.equal(ref.tower.eval()(x), loaded(x))
    # the pruned export loads strictly: a key that belongs to no block is refused
    sd = load_file(str(out))
    save_file({**sd, "stray.weight": torch.zeros(1)}, str(tmp_path / "stray.safetensors"))
    with pytest.raises(UserError, match="do not fit"):
        VisionTower(TowerConfig(**cfg, weights=str(tmp_path / "stray.safetensors")))
    # a full (unpruned) timm checkpoint still loads, its pruned blocks ignored
    full = timm.create_model("test_resnet", num_classes=0)
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(tmp_path / "full.safetensors"))
    VisionTower(TowerConfig(**cfg, weights=str(tmp_path / "full.safetensors")))


def test_short_run_learns_the_cell_attributes():
    torch.manual_seed(0)
    model = TowerWithHeads(VisionTower(TowerConfig("timm:test_resnet", layer=3, image_size=48,
                                                   preprocess={"crop_pct": 1.0})))
    data = AttributeScenes(seed=0)
    collate = AttributeCollator(model.tower.preprocess)
    opt = torch.optim.AdamW(model.parameters(), 2e-3)
    first = None
    for step in range(40):
        batch = collate([data[step * 16 + i] for i in range(16)])
        loss, parts = attribute_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or parts
    # empty vs occupied and size are learned first; the RGB regression falls well below its start
    assert parts["size_ce"] < 0.5 * first["size_ce"]
    assert parts["rgb_mse"] < 0.5 * first["rgb_mse"]
