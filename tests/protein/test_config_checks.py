"""A DSM ``config.json`` with a wrong, missing or absurd field fails with one line naming the field, before any
weights are allocated."""

from __future__ import annotations

import json
import shutil

import pytest

from maskzoo.core.errors import UserError
from maskzoo.protein.checkpoints import load_model


@pytest.mark.parametrize(
    "change, match",
    [
        ({"num_layers": "4"}, "num_layers"),
        ({"embed_dim": 10**9}, "parameters.*field .embed_dim. = 1000000000 wrong"),
        ({"num_layers": 10**6}, "parameters.*field .num_layers. = 1000000 wrong"),
        ({"attention_heads": 0}, "attention_heads"),
        ({"attention_heads": 5}, "not divisible"),
        ({"vocab_size": 40}, "vocab_size"),
        ({"max_seq_len": -1}, "max_seq_len"),
        ({"token_dropout": "no"}, "token_dropout"),
        ({"colour": 1}, "colour"),
        ({"embed_dim": None}, "embed_dim"),
    ],
)
def test_bad_config_field_is_named(tiny_dsm_dir, tmp_path, change, match):
    d = tmp_path / "m"
    shutil.copytree(tiny_dsm_dir, d)
    meta = json.loads((d / "config.json").read_text())
    meta["config"].update(change)
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=match) as e:
        load_model(d)
    assert "\n" not in str(e.value)


def test_missing_field_is_named(tiny_dsm_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_dsm_dir, d)
    meta = json.loads((d / "config.json").read_text())
    del meta["config"]["embed_dim"]
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError):  # a default exists: loading then fails on the weights' shapes, one line
        load_model(d)


@pytest.mark.parametrize(
    "override, match",
    [
        ("model.attention_heads=5", "attention_heads"),
        ("data.crop_len=0", "crop_len"),
        ("diffusion.elbo_samples=-1", "elbo_samples"),
        ("export={file}", "not a directory"),
    ],
)
def test_bad_recipe_fails_before_training(tmp_path, capsys, override, match):
    from maskzoo.core.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    rc = main(["protein", "train", f"run_dir={tmp_path / 'run'}", override.format(file=f), "train.max_steps=1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and match in err, err
    assert not (tmp_path / "run" / "checkpoints").exists() and f.read_text() == "x"
