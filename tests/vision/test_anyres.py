"""LLaVA-NeXT / LLaDA-V anyres tiling: resolution choice, padding, the tile map's layout, unpadding and
``anyres_max`` downsampling against hand-derived values, and captioning a tiling checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _vision_fixtures import make_llava_llada_dir
from PIL import Image
from safetensors.torch import load_file

from maskzoo.core.errors import UserError
from maskzoo.vision import anyres
from maskzoo.vision.anyres import AnyRes
from maskzoo.vision.caption import Captioner
from maskzoo.vision.checkpoint import load_vision_model

LLADA_V = anyres.parse_grid_pinpoints("(1x1),...,(6x6)", 384)  # LLaDA-V's config: 36 grids of 384-px tiles


def test_pinpoint_grammar():
    assert len(LLADA_V) == 36 and LLADA_V[0] == (384, 384) and LLADA_V[1] == (384, 768)
    assert LLADA_V[-1] == (2304, 2304)
    assert anyres.parse_grid_pinpoints([[32, 64], [64, 32]], 32) == ((32, 64), (64, 32))
    assert anyres.parse_grid_pinpoints("[[336, 672], [672, 336]]", 336) == ((336, 672), (672, 336))
    with pytest.raises(UserError):
        anyres.parse_grid_pinpoints("(AxB)", 384)


def test_best_resolution_is_the_smallest_grid_holding_the_image():
    # 800 x 600 at full resolution needs w >= 800 and h >= 600, i.e. at least 3 x 2 tiles of 384 (1152 x 768);
    # every larger grid keeps the same 480,000 pixels but wastes more
    assert anyres.select_best_resolution((800, 600), LLADA_V) == (1152, 768)
    assert anyres.select_best_resolution((600, 800), LLADA_V) == (768, 1152)
    assert anyres.select_best_resolution((300, 200), LLADA_V) == (384, 384)  # small images: one tile
    # too large for any grid: the most pixels kept wins (5000 x 1000 fits 2304 wide: 2304 x 460 -> 6x2 grid)
    assert anyres.select_best_resolution((5000, 1000), LLADA_V) == (2304, 768)


def test_views_pad_on_black_and_cut_row_major():
    image = Image.new("RGB", (800, 600), (250, 250, 250))
    views, grid = anyres.views(image, 384, AnyRes(LLADA_V, 4))
    assert grid == (3, 2) and len(views) == 1 + 6
    assert all(v.size == (384, 384) for v in views)
    # the image is resized to 1024 x 768 (height fills) and centred: 64 black columns on each side
    left, right = views[1], views[3]  # top-left and top-right tiles
    assert left.getpixel((63, 100)) == (0, 0, 0) and left.getpixel((70, 100))[0] > 240
    assert right.getpixel((384 - 64, 100)) == (0, 0, 0) and right.getpixel((384 - 71, 100))[0] > 240
    assert views[0].getpixel((0, 0))[0] > 240  # the base view is squashed, never padded


def test_unpad_and_downsample_shapes():
    # 3 x 2 tiles of 27 x 27 features: a 54 x 81 map. The image (4:3) fills the height, so its width is
    # int(800 * 54 / 600) = 72 columns, centred: (81 - 72) // 2 = 4 cut on each side -> columns 4..76 (73)
    assert anyres.unpad_shape(54, 81, (800, 600)) == (0, 54, 4, 77)
    # anyres_max_4: 54 * 73 = 3942 > 4 * 729; f = sqrt(3942 / 2916) = 1.1627 > 1.1 -> (54 // f, 73 // f) = (46, 62)
    assert anyres.merged_map_shape((3, 2), 27, (800, 600), 4) == (46, 62)
    assert anyres.merged_map_shape((3, 2), 27, (800, 600), None) == (54, 73)  # plain anyres never downsamples
    # tokens: 729 (base) + 46 rows of 62 features and a newline
    assert anyres.anyres_token_count((800, 600), 384, 27, AnyRes(LLADA_V, 4)) == 729 + 46 * 63
    # a wide image pads rows: 2304 x 768 map of a 5:1 image -> rows int(1000 * 162 / 5000) = 32, pad 3 each side
    assert anyres.unpad_shape(54, 162, (5000, 1000)) == (11, 43, 0, 162)


def test_merge_lays_tiles_out_as_one_map():
    side, grid, size = 3, (2, 2), (60, 30)  # 2 x 2 tiles of 3 x 3 features; a 2:1 image -> rows padded
    rows, cols = grid[1] * side, grid[0] * side
    feats = torch.zeros(1 + 4, side * side, 3)
    feats[0] = -1.0  # base view
    for Y in range(rows):  # every tile feature records its place in the full map
        for X in range(cols):
            tile = (Y // side) * grid[0] + X // side
            feats[1 + tile, (Y % side) * side + X % side] = torch.tensor([Y, X, 1.0])
    newline = torch.tensor([9.0, 9.0, 9.0])
    out = anyres.merge(feats, grid, size, newline, max_patches=None)
    top, bottom, left, right = anyres.unpad_shape(rows, cols, size)
    assert (top, bottom, left, right) == (1, 5, 0, 6)  # int(30 * 6 / 60) = 3 image rows -> pad (6 - 3) // 2 = 1
    assert torch.equal(out[:9], feats[0])  # base first, no newline after it
    body = out[9:].view(bottom - top, right - left + 1, 3)
    assert torch.equal(body[:, -1], newline.expand(bottom - top, 3))  # each row ends with image_newline
    want = torch.tensor([[[Y, X, 1.0] for X in range(left, right)] for Y in range(top, bottom)])
    assert torch.equal(body[:, :-1], want)


REFERENCE = Path(__file__).parent / "fixtures" / "anyres"


def test_matches_llada_v_reference_code():
    """Against LLaDA-V's own mm_utils / prepare_inputs_labels_for_multimodal (see fixtures/anyres/README.md)."""
    ref = json.loads((REFERENCE / "anyres_reference.json").read_text())
    t = load_file(str(REFERENCE / "anyres_reference.safetensors"))
    for case in ref["grid_shapes"]:
        w, h = anyres.select_best_resolution(tuple(case["size"]), LLADA_V)
        assert [w // 384, h // 384] == case["grid"], case
    pins = anyres.parse_grid_pinpoints(ref["pinpoints"], 32)
    side = ref["features_per_side"]
    for case in ref["merges"]:
        k, size, tiling = case["key"], tuple(case["size"]), AnyRes(pins, case["max_patches"])
        image = Image.fromarray(t[f"image_{k}"].numpy())
        views, grid = anyres.views(image, 32, tiling)
        ours = torch.stack([torch.from_numpy(np.array(v)) for v in views])  # [1 + r c, 32, 32, 3]
        assert ours.shape == t[f"views_{k}"].shape
        assert (ours.int() - t[f"views_{k}"].int()).abs().max() <= 1  # PIL bicubic, same geometry
        merged = anyres.merge(t[f"feats_{k}"], grid, size, t[f"newline_{k}"], tiling.max_patches)
        assert merged.shape[0] == case["tokens"] == anyres.anyres_token_count(size, 32, side, tiling)
        assert torch.allclose(merged, t[f"merged_{k}"], atol=1e-6), case


@pytest.fixture(scope="module")
def tiling_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llava_anyres") / "LLaDA-V-tiny"
    make_llava_llada_dir(path)  # image_aspect_ratio anyres_max_4, pinpoints [[32, 32], [32, 64], [64, 32]]
    return path


def test_tiling_checkpoint_features_and_captions(tiling_dir):
    model, _ = load_vision_model(tiling_dir)
    assert model.anyres == AnyRes(((32, 32), (32, 64), (64, 32)), 4)
    sizes = [(40, 30), (30, 60), (64, 64), (90, 20)]
    images = [Image.new("RGB", s, (20 * i, 200, 90)) for i, s in enumerate(sizes)]
    counts = [model.image_token_count(im) for im in images]
    with torch.no_grad():
        assert [model.encode_image_tiled(im).shape[0] for im in images] == counts
    assert len(set(counts)) > 1  # the batch mixes token counts
    cap = Captioner.from_pretrained(tiling_dir)
    kw = {"gen_length": 6, "steps": 3, "block_length": 6}
    together = cap.caption(images, **kw)
    assert together == [cap.caption([im], **kw)[0] for im in images]  # grouping keeps each image's caption


def test_training_a_tiling_model_needs_single_view(tiling_dir, tmp_path):
    from maskzoo.vision.train import train_from_recipe

    args = [f"model.init={tiling_dir}", "data.kind=llava", "train.max_steps=1", f"run_dir={tmp_path / 'r'}"]
    with pytest.raises(UserError, match="single_view"):
        train_from_recipe("apps/recipes/vision_llada_v_stage2.yaml", args)


def test_single_view_training_exports_a_one_view_model(tiling_dir, tmp_path):
    import json

    from maskzoo.vision.scenes import write_scene_folder
    from maskzoo.vision.train import train_from_recipe

    write_scene_folder(tmp_path / "scenes", 2, image_size=32)
    out = train_from_recipe("apps/recipes/vision_llada_v_stage2.yaml", [
        f"model.init={tiling_dir}", "model.single_view=true", "data.kind=captions",
        f"data.path={tmp_path / 'scenes' / 'captions.jsonl'}", "data.prompt=<image> describe", "data.batch_size=2",
        "data.seq_len=0", "train.max_steps=1", "train.warmup_steps=0", "train.progress=false", "eval.scenes=0",
        f"run_dir={tmp_path / 'r'}", f"export_dir={tmp_path / 'model'}"])
    assert json.loads((out / "config.json").read_text())["config"]["anyres"] is None
    model, _ = load_vision_model(out)
    assert model.anyres is None and model.image_token_count(Image.new("RGB", (90, 20))) == model.tokens_per_image
