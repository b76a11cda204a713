"""``maskzoo vision caption`` end to end, and bad input: one line on stderr, exit 2, no partial output."""

from __future__ import annotations

import json

import pytest
from _vision_fixtures import tiny_vlm

from maskzoo.core.cli import main
from maskzoo.vision import zoo
from maskzoo.vision.checkpoint import save_vision_model
from maskzoo.vision.scenes import SceneGenerator, caption_vocabulary


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    gen = SceneGenerator("heldout", image_size=48)
    paths = []
    for i in range(3):
        im, _ = gen.item(i, seed=5)
        im.save(d / f"s{i}.png")
        paths.append(d / f"s{i}.png")
    return paths


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    model, tok = tiny_vlm()
    return save_vision_model(model, tok, tmp_path_factory.mktemp("ck") / "tiny", extra={"generation": {"steps": 4, "gen_length": 8}})


def _run(capsys, argv):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse rejects a bad option value itself
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.skipif(not (zoo.WEIGHTS / "config.json").is_file(), reason="embedded weights not built")
def test_caption_with_the_embedded_default(capsys, images):
    rc, out, err = _run(capsys, ["vision", "caption", *map(str, images)])
    assert rc == 0, err
    lines = out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(p) for p in images]
    vocab = set(caption_vocabulary())
    for ln in lines:
        caption = ln.split("\t")[1]
        assert caption and set(caption.split()) <= vocab


def test_caption_a_tiny_checkpoint_jsonl_and_output_file(capsys, images, tiny_ckpt, tmp_path):
    rc, out, err = _run(capsys, ["vision", "caption", *map(str, images), "--checkpoint", str(tiny_ckpt), "--jsonl"])
    assert rc == 0, err
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert [r["image"] for r in rows] == [str(p) for p in images] and all("caption" in r for r in rows)
    target = tmp_path / "caps.tsv"
    rc, out, _ = _run(capsys, ["vision", "caption", str(images[0].parent), "--checkpoint", str(tiny_ckpt),
                               "--out", str(target), "--steps", "2", "--length", "4"])
    assert rc == 0 and out == "" and len(target.read_text().splitlines()) == 3


def test_progress_on_stderr_unless_quiet(capsys, images, tiny_ckpt, monkeypatch):
    monkeypatch.setenv("MASKZOO_PROGRESS", "1")  # bars even though stderr is not a terminal here
    rc, out, err = _run(capsys, ["vision", "caption", *map(str, images * 3), "--checkpoint", str(tiny_ckpt)])
    assert rc == 0 and len(out.splitlines()) == 9 and "captioning" in err and "loading the model" in err
    rc, out, err = _run(capsys, ["vision", "caption", *map(str, images), "--checkpoint", str(tiny_ckpt), "-q"])
    assert rc == 0 and len(out.splitlines()) == 3 and err == ""


@pytest.mark.parametrize("flags, expected", [(["--length", "6", "--block-length", "4"], "--length"),
                                             (["--steps", "0"], "--steps"), (["--temperature", "nan"], "temperature"),
                                             (["--batch-size", "0"], "--batch-size")])
def test_bad_sampling_options_are_one_line(capsys, images, tiny_ckpt, flags, expected):
    rc, out, err = _run(capsys, ["vision", "caption", str(images[0]), "--checkpoint", str(tiny_ckpt), "-q", *flags])
    assert rc == 2 and out == "" and expected in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 2


def _bad_inputs(tmp_path, images, tiny_ckpt):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(images[0].read_bytes()[:120])
    ck = ["--checkpoint", str(tiny_ckpt)]
    return {
        "not an image file": ["vision", "caption", str(images[0]), str(text), *ck],
        "unreadable or truncated": ["vision", "caption", str(trunc), *ck],
        "no <image> placeholder": ["vision", "caption", str(images[0]), "--prompt", "describe it", *ck],
        "no such file or directory": ["vision", "caption", str(images[0]), "--checkpoint", str(tmp_path / "nope")],
        "image not found": ["vision", "caption", str(tmp_path / "missing.png"), *ck],
    }


@pytest.mark.parametrize("expected", ["not an image file", "unreadable or truncated", "no <image> placeholder",
                                      "no such file or directory", "image not found"])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, images, tiny_ckpt, expected):
    target = tmp_path / "out.tsv"
    argv = _bad_inputs(tmp_path, images, tiny_ckpt)[expected] + ["--out", str(target), "--quiet"]
    rc, out, err = _run(capsys, argv)
    assert rc == 2 and out == "" and not target.exists()
    assert err.count("\n") == 1 and err.startswith("maskzoo: error:") and expected in err, err
    assert "Traceback" not in err


def test_unknown_tower_name_in_training_is_one_line(capsys, tmp_path):
    rc, out, err = _run(capsys, ["vision", "train", "--config", "apps/recipes/vision_scenes_captioner.yaml",
                                 "model.tower.name=timm:no_such_tower", f"run_dir={tmp_path / 'run'}"])
    assert rc == 2 and err.count("\n") == 1 and "timm does not know a model named 'no_such_tower'" in err
    rc, out, err = _run(capsys, ["vision", "train", "--config", "apps/recipes/vision_scenes_captioner.yaml",
                                 "model.tower.name=open_clip:No-Such", f"run_dir={tmp_path / 'run'}"])
    assert rc == 2 and "open_clip does not know" in err


@pytest.mark.skipif(not (zoo.WEIGHTS / "config.json").is_file(), reason="embedded weights not built")
def test_embedded_default_matches_its_model_card():
    from maskzoo.vision import Captioner
    from maskzoo.vision.evaluate import evaluate_scenes

    cap = Captioner.from_pretrained()
    seen = evaluate_scenes(cap, "train", 100)
    heldout = evaluate_scenes(cap, "heldout", 100)
    assert seen["exact_match"] >= 0.95 and seen["token_accuracy"] >= 0.95  # card: 0.990 / 0.991 on 200
    # the target: at least 90% exact on unseen colour-shape pairs (card: 0.962 / 0.979 on 500)
    assert heldout["exact_match"] >= 0.9 and heldout["token_accuracy"] >= 0.95


@pytest.mark.parametrize("override, expected", [
    ("tower.layer=2", "one feature per scene cell"),
    ("tower.weights=/no/such/tower.safetensors", "weights file not found"),
    ("batch_sise=8", "batch_sise"),
])
def test_pretrain_tower_bad_input_is_one_line(capsys, tmp_path, override, expected):
    run = tmp_path / "run"
    rc, out, err = _run(capsys, ["vision", "pretrain-tower", "--config", "apps/recipes/vision_scenes_tower.yaml",
                                 override, f"run_dir={run}"])
    assert rc == 2 and err.count("\n") == 1 and expected in err, err
    assert not (run / "tower.safetensors").exists()


def test_captioner_recipe_without_its_stage0_tower_says_which_file(capsys, tmp_path):
    rc, out, err = _run(capsys, ["vision", "train", "--config", "apps/recipes/vision_scenes_captioner.yaml",
                                 "model.tower.weights=/no/such/tower.safetensors", f"run_dir={tmp_path / 'run'}"])
    assert rc == 2 and err.count("\n") == 1 and "/no/such/tower.safetensors" in err
