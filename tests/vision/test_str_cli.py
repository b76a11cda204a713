"""``maskzoo vision read-text`` end to end: output formats, options, bad input (exit 2, one line, no output
file), and the embedded model when it is built."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from maskzoo.core.checkpoint import save_model
from maskzoo.core.cli import main
from maskzoo.vision.str.model import STRConfig, STRModel
from maskzoo.vision.str.zoo import DEFAULT_MODEL, WEIGHTS_ROOT


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("str") / "model"
    save_model(STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny")), d)
    return d


@pytest.fixture()
def crops(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(32, 100), (60, 40), (1, 2000)]):
        p = tmp_path / f"crop{i}.png"
        Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_tab_separated_output_in_input_order(ckpt, crops, capsys):
    assert main(["vision", "read-text", *map(str, crops), "--checkpoint", str(ckpt)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(p) for p in crops]
    assert all(ln.count("\t") == 1 for ln in lines)


@pytest.mark.parametrize(("mode", "option"), [("low_confidence", ["--steps", "2"]), ("cloze", ["--steps", "2"]),
                                              ("semi_autoregressive", ["--block-length", "2"]),
                                              ("autoregressive", [])])
def test_jsonl_with_confidences_for_each_mode(ckpt, crops, capsys, tmp_path, mode, option):
    out = tmp_path / "out.jsonl"
    rc = main(["vision", "read-text", *map(str, crops), "--checkpoint", str(ckpt), "--jsonl", "--mode", mode,
               *option, "--batch-size", "2", "--out", str(out)])
    assert rc == 0 and capsys.readouterr().out == ""
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["image"] for r in rows] == [str(p) for p in crops]
    for r in rows:
        assert len(r["confidences"]) == len(r["text"]) and 0 <= r["eos_confidence"] <= 1


def test_folder_input(ckpt, crops, capsys):
    assert main(["vision", "read-text", str(crops[0].parent), "--checkpoint", str(ckpt)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maskzoo.core.cli", "vision", "read-text", *args],
                          capture_output=True, text=True, timeout=300)


def test_bad_inputs_exit_2_with_one_line_and_no_output_file(ckpt, crops, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out = tmp_path / "out.tsv"
    r = _cli(str(crops[0]), str(bad), "--checkpoint", str(ckpt), "--out", str(out))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "notes.png" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("args, needle", [
    (["missing.png"], "not found"),
    (["--steps", "0"], "--steps"),
    (["--mode", "beam"], "invalid choice"),
    (["--checkpoint", "no-such-model"], "no-such-model"),
    (["--mode", "parallel", "--steps", "3"], "steps does not apply to mode 'parallel'"),
])
def test_option_and_path_mistakes(crops, capsys, args, needle):
    argv = ["vision", "read-text", *(args if args[0] == "missing.png" else [str(crops[0]), *args])]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err


@pytest.mark.skipif(not (WEIGHTS_ROOT / DEFAULT_MODEL / "config.json").is_file(), reason="embedded model not built")
def test_embedded_model_runs_from_the_command_line(tmp_path):
    from maskzoo.vision.str.realdata import split_iiit5k

    _, val = split_iiit5k()
    paths = []
    for i in range(4):
        p = tmp_path / f"{i}.png"
        Image.fromarray(val.images[i]).save(p)
        paths.append(str(p))
    r = _cli(*paths, "--jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [row["image"] for row in rows] == paths


@pytest.mark.skipif(not (WEIGHTS_ROOT / DEFAULT_MODEL / "config.json").is_file(), reason="embedded model not built")
def test_embedded_model_reads_better_than_an_untrained_one():
    from maskzoo.vision.str.inference import read_text
    from maskzoo.vision.str.metrics import str_metrics
    from maskzoo.vision.str.realdata import split_iiit5k
    from maskzoo.vision.str.zoo import load_str_model

    _, val = split_iiit5k()
    crops = [Image.fromarray(a) for a in val.images]
    trained = load_str_model()
    torch.manual_seed(0)
    fresh = STRModel(trained.config).eval()
    score = {name: str_metrics([r.text for r in read_text(m, crops)], val.labels)["one_minus_ned"]
             for name, m in (("trained", trained), ("fresh", fresh))}
    assert score["trained"] > 2 * score["fresh"] + 0.01, score
