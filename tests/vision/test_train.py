"""``maskzoo vision train`` on the three data formats, exported checkpoints, and exact resume with the staged
optimizer (tower at its own learning rate)."""

from __future__ import annotations

import json

import torch
from PIL import Image

from maskzoo.core.cli import main
from maskzoo.vision.caption import Captioner
from maskzoo.vision.checkpoint import load_vision_model
from maskzoo.vision.scenes import write_scene_folder

RECIPE = "apps/recipes/vision_scenes_captioner.yaml"
TINY = ["model.tower.weights=null", "model.lm.d_model=32", "model.lm.n_layers=1", "model.lm.n_heads=2", "model.tower.image_size=32",
        "data.scene_image_size=32", "data.batch_size=4", "data.seq_len=0", "train.warmup_steps=0",
        "train.log_every=1", "train.save_every=0", "train.progress=false", "eval.scenes=2", "eval.steps=2",
        "eval.gen_length=4", "export_dir=null"]


def _train(tmp_path, name, *extra):
    run = tmp_path / name
    rc = main(["vision", "train", "--config", RECIPE, *TINY, f"run_dir={run}", *extra])
    assert rc == 0
    return run


def meta_generation(run):
    return json.loads((run / "model" / "config.json").read_text())["extra"]["generation"]


def test_scenes_recipe_exports_a_loadable_captioner(tmp_path):
    run = _train(tmp_path, "scenes", "train.max_steps=2", "train.eval_every=1")
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/heldout_exact" in m for m in metrics)
    cap = Captioner.from_pretrained(run / "model")
    assert cap.generation()["gen_length"] == 4 and meta_generation(run) == {"steps": 2, "gen_length": 4}
    assert len(cap.caption([Image.new("RGB", (32, 32))])) == 1
    meta = json.loads((run / "model" / "config.json").read_text())
    assert meta["extra"]["stage"] == 2 and meta["config"]["tower"]["weights"] is None


def test_captions_jsonl_and_llava_conversations(tmp_path):
    write_scene_folder(tmp_path / "folder", 4, image_size=32)
    run = _train(tmp_path, "jsonl", "train.max_steps=1", "data.kind=captions",
                 f"data.path={tmp_path / 'folder' / 'captions.jsonl'}", "stage.stage=1",
                 "stage.train_tower=false")
    model, _ = load_vision_model(run / "model")
    assert model.config.prompt == "<image> describe the image ."
    conv = [{"image": ["scene_000000.png", "scene_000001.png"],
             "conversations": [{"from": "human", "value": "<image> and <image> describe the image ."},
                               {"from": "gpt", "value": "a small red square at the top"}]},
            {"conversations": [{"from": "human", "value": "what is in this picture ?"},
                               {"from": "gpt", "value": "a circle"}]}]
    (tmp_path / "folder" / "llava.json").write_text(json.dumps(conv))
    _train(tmp_path, "llava", "train.max_steps=1", "data.kind=llava", f"data.path={tmp_path / 'folder' / 'llava.json'}",
           "data.batch_size=2", f"model.init={run / 'model'}")


def test_resume_with_tower_learning_rate_is_exact(tmp_path):
    # constant learning rate: the cosine schedule would otherwise depend on max_steps
    args = ["stage.train_tower=true", "stage.tower_lr=1e-4", "eval.scenes=0", "train.save_every=2",
            "train.lr=1e-3", "train.min_lr=1e-3"]
    straight = _train(tmp_path, "straight", "train.max_steps=3", *args)
    _train(tmp_path, "split", "train.max_steps=2", *args)
    split = _train(tmp_path, "split", "train.max_steps=3", *args)  # resumes from step 2
    a, _ = load_vision_model(straight / "model")
    b, _ = load_vision_model(split / "model")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_every_vision_recipe_parses():
    from pathlib import Path

    from maskzoo.core.config import load_config
    from maskzoo.vision.tower_pretrain import TowerPretrainRecipe
    from maskzoo.vision.train import VisionRecipe

    recipes = sorted(p for p in Path("apps/recipes").glob("vision_*.yaml")
                     if not p.stem.startswith("vision_str_"))  # scene-text recipes have their own schema and tests
    towers = [p for p in recipes if p.stem.endswith("_tower")]  # stage 0 (tower pre-training) recipes
    assert [load_config(TowerPretrainRecipe, p).tower.layer for p in towers] == [3]
    recipes = [p for p in recipes if p not in towers]
    assert len(recipes) >= 3
    stages = {p.stem: load_config(VisionRecipe, p).stage.stage for p in recipes}
    assert stages["vision_llada_v_stage1"] == 1 and stages["vision_llada_v_stage2"] == 2
