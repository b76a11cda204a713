"""Training from a recipe end to end (a few steps of each decoder) and recipe validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskzoo.core.errors import UserError
from maskzoo.vision.str.inference import read_text
from maskzoo.vision.str.model import STRModel
from maskzoo.vision.str.realdata import split_iiit5k
from maskzoo.vision.str.train import train_from_recipe
from maskzoo.vision.str.zoo import load_str_model

RECIPES = Path(__file__).resolve().parents[2] / "apps" / "recipes"
FAST = ["train.max_steps=2", "train.warmup_steps=1", "train.log_every=1", "train.save_every=0", "data.batch_size=4",
        "eval.val_crops=4", "train.progress=false"]


@pytest.mark.parametrize("recipe, causal", [("vision_str_mdiff.yaml", False), ("vision_str_ar.yaml", True)])
def test_recipe_trains_exports_and_reads(tmp_path, recipe, causal):
    out = train_from_recipe(RECIPES / recipe, [*FAST, f"run_dir={tmp_path}/run", f"export={tmp_path}/model"],
                            resume=False)
    model = load_str_model(out)
    assert isinstance(model, STRModel) and model.causal is causal
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any('"eval/word_acc_36"' in r for r in rows) and any('"loss"' in r for r in rows)
    _, val = split_iiit5k()
    from PIL import Image

    got = read_text(model, [Image.fromarray(val.images[0])], mode="autoregressive")
    assert len(got) == 1


@pytest.mark.parametrize("recipe, init", [("vision_str_mdiff_long.yaml", "vision-str-mdiff"),
                                          ("vision_str_mdiff_stage3.yaml", "vision-str-mdiff"),
                                          ("vision_str_ar_long.yaml", "vision-str-ar")])
def test_stage2_recipes_continue_from_their_stage1_model(tmp_path, recipe, init):
    """The stage-2 recipes name stage 1's run folder; here the embedded model of the same architecture stands in."""
    import yaml

    assert yaml.safe_load((RECIPES / recipe).read_text())["model"]["init"].startswith("runs/")
    out = train_from_recipe(RECIPES / recipe, [*FAST, f"model.init={init}", f"run_dir={tmp_path}/run",
                                               f"export={tmp_path}/model"], resume=False)
    assert load_str_model(out).causal is load_str_model(init).causal


@pytest.mark.parametrize("override, message", [
    ("noise.full=-1", "weights"),
    ("data.p_real=2", "p_real"),
    ("model.decoder=giant", "decoder preset"),
    ("eval.mode=beam", "mode"),
    ("model.colour=red", "colour"),
])
def test_bad_recipes_fail_before_training(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        train_from_recipe(RECIPES / "vision_str_mdiff.yaml", [*FAST, f"run_dir={tmp_path}/run", override])
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_model_init_copies_weights_and_refuses_another_architecture():
    from maskzoo.vision.str.train import ModelSpec, build_model, init_weights

    embedded = load_str_model("vision-str-mdiff")
    model = build_model(ModelSpec(encoder="svtrv2-tiny", decoder="tiny", dropout=0.0, ctc_weight=0.2))
    init_weights(model, "vision-str-mdiff")
    got, want = model.state_dict(), embedded.state_dict()
    assert got.keys() == want.keys() and all(got[k].equal(want[k]) for k in want)
    regularised = build_model(ModelSpec(encoder="svtrv2-tiny", decoder="tiny", dropout=0.1, ctc_weight=0.2))
    init_weights(regularised, "vision-str-mdiff")  # dropout is not architecture
    assert regularised.config.dropout == 0.1 and all(regularised.state_dict()[k].equal(want[k]) for k in want)
    with pytest.raises(UserError, match="architecture differs.*d_model"):
        init_weights(build_model(ModelSpec(decoder="small", dropout=0.0, ctc_weight=0.2)), "vision-str-mdiff")


@pytest.mark.parametrize("override, message", [
    ("model.init=/nonexistent/model", "nonexistent"),
    ("model.decoder=small", "architecture differs"),
])
def test_bad_init_fails_before_training(tmp_path, override, message):
    with pytest.raises(UserError, match=message):
        train_from_recipe(RECIPES / "vision_str_mdiff_long.yaml",
                          [*FAST, f"run_dir={tmp_path}/run", "model.init=vision-str-mdiff", override])
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_export_that_cannot_be_written_fails_before_training(tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    with pytest.raises(UserError, match="exists and is not a directory"):
        train_from_recipe(RECIPES / "vision_str_mdiff.yaml",
                          [*FAST, f"run_dir={tmp_path}/run", f"export={tmp_path}/taken"])
    assert not (tmp_path / "run").exists() and (tmp_path / "taken").read_text() == "not a directory"
