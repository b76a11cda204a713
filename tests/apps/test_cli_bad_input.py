"""End to end: the ``maskzoo`` command with the ordinary mistakes of a new user.

Every case asserts exit status 2, a short stderr without a traceback, and that every file that existed in the
working folder before the command is byte-identical afterwards (hashes; symlinks stay links to the same place).
Most cases run ``maskzoo.core.cli.main`` in-process (fast); a few run the real installed command.
Other areas add their own cases in their own test files (tests/<area>/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _tree_snapshot import snapshot as _snapshot  # tests/core is on sys.path (tests/conftest.py)

from maskzoo.core.cli import main
from maskzoo.core.registry import get_entry

TEXT_MODEL = "text-char-shakespeare"
FAST = ["--length", "8", "--steps", "2", "--seed", "0"]




@pytest.fixture
def ws(tmp_path):
    """A working folder with the kinds of files a user has lying around."""
    (tmp_path / "empty.fasta").write_text("")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "one.fasta").write_text(">a\nMKTAYIAKQRQISFVKSHFSRQ\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.txt").write_text("do not touch")
    (tmp_path / "target.txt").write_text("old target\n")
    (tmp_path / "link.txt").symlink_to("target.txt")
    (tmp_path / "report_file").write_text("an important report\n")
    (tmp_path / "bad.png").write_bytes(b"P\x00NG not really")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(get_entry(TEXT_MODEL).weights_dir, ckpt)
    (tmp_path / "secret.safetensors").write_bytes(b"outside the checkpoint")
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    got = capsys.readouterr()
    return rc, got.out, got.err


def assert_user_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line]
    assert 1 <= len(lines) <= 2 and all(len(line) < 400 for line in lines), err
    for needle in needles:
        assert needle in err, err


# ------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["protein", "score", "{ws}/missing.fasta"], "missing.fasta"),
        (["protein", "score", "{ws}/empty.fasta"], "empty.fasta"),
        (["protein", "evaluate", "{ws}/missing.fasta", "--no-plots", "--out", "{ws}/new_report"], "missing.fasta"),
        (["text", "eval", "--text", "{ws}/empty.txt", "--max-windows", "2"], "empty.txt"),
        (["text", "eval", "--text", "{ws}/missing.txt"], "missing.txt"),
        (["text", "generate", "--checkpoint", "{ws}/no_such_model", *FAST], "no_such_model"),
        (["text", "generate", "--checkpoint", "{ws}/one.fasta", *FAST], "one.fasta"),
        (["text", "generate", "--num", "0", *FAST], "--num"),
        (["text", "generate", "--temperature", "nan", *FAST], "--temperature"),
        (["vision", "caption", "{ws}/missing.png"], "missing.png"),
        (["vision", "caption", "{ws}/bad.png"], "bad.png"),
    ],
)
def test_bad_inputs_are_one_line_errors_and_change_nothing(ws, capsys, argv, needle):
    before = _snapshot(ws)
    rc, _, err = run(capsys, *(a.format(ws=ws) for a in argv))
    assert_user_error(rc, err, needle)
    assert _snapshot(ws) == before


# ------------------------------------------------------------------------------------------- checkpoints


def _edit_config(ckpt: Path, **fields) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"].update(fields)
    (ckpt / "config.json").write_text(json.dumps(meta))


def _corrupt(ckpt: Path, how: str) -> str:
    """Damage checkpoint ``ckpt`` as ``how`` says; returns text the error must contain."""
    if how == "not_json":
        (ckpt / "config.json").write_text("{not json")
        return "not valid JSON"
    if how == "huge":
        _edit_config(ckpt, n_layers=10**9)
        return "parameters"
    if how == "wrong_type":
        _edit_config(ckpt, d_model="128")
        return "d_model"
    if how == "truncated":
        w = ckpt / "model.safetensors"
        w.write_bytes(w.read_bytes()[:1000])
        return "corrupt or truncated"
    if how == "no_weights":
        (ckpt / "model.safetensors").unlink()
        return "missing"
    if how == "shard_escape":
        (ckpt / "model.safetensors").unlink()  # the index names a file beside the checkpoint instead
        (ckpt / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"embed.weight": "../secret.safetensors"}})
        )
        return "outside the checkpoint directory"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["not_json", "huge", "wrong_type", "truncated", "no_weights", "shard_escape"])
def test_a_corrupt_checkpoint_is_a_one_line_error(ws, capsys, how):
    needle = _corrupt(ws / "ckpt", how)
    before = _snapshot(ws)
    rc, out, err = run(capsys, "text", "generate", "--checkpoint", ws / "ckpt", *FAST)
    assert_user_error(rc, err, needle)
    assert out == ""
    assert _snapshot(ws) == before


# ------------------------------------------------------------------------------------------- outputs


def test_a_directory_as_out_file_is_refused(ws, capsys):
    before = _snapshot(ws)
    rc, _, err = run(capsys, "text", "generate", *FAST, "--out", ws / "results")
    assert_user_error(rc, err, "directory")
    assert _snapshot(ws) == before


def test_an_out_symlink_is_written_through(ws, capsys):
    before = _snapshot(ws)
    rc, out, err = run(capsys, "text", "generate", *FAST, "--out", ws / "link.txt")
    assert rc == 0, err
    after = _snapshot(ws)
    assert after["link.txt"] == "->target.txt"  # still a link, to the same place
    assert (ws / "target.txt").read_text() != "old target\n"
    assert {k: v for k, v in after.items() if k != "target.txt"} == {k: v for k, v in before.items() if k != "target.txt"}


def test_an_out_dir_that_is_a_regular_file_is_refused(ws, capsys):
    before = _snapshot(ws)
    rc, _, err = run(capsys, "protein", "evaluate", ws / "one.fasta", "--no-plots", "--out", ws / "report_file")
    assert_user_error(rc, err, "report_file")
    assert _snapshot(ws) == before


def test_a_report_into_an_existing_folder_keeps_the_other_files(ws, capsys):
    before = _snapshot(ws)
    rc, _, err = run(capsys, "protein", "evaluate", ws / "one.fasta", "--no-plots", "--out", ws / "results")
    assert rc == 0, err
    after = _snapshot(ws)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {"results/metrics.json", "results/report.md"} <= set(after)


# ------------------------------------------------------------------------------------------- recipes


TINY = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.max_seq_len=16", "data.seq_len=16",
        "data.batch_size=2", "eval.windows=1", "eval.num_samples=2"]


def _recipe(ws: Path, text: str) -> Path:
    p = ws / "recipe.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "yaml_text, overrides, needle",
    [
        ("modle:\n  d_model: 8\n", [], "modle"),
        ("model:\n  d_model: 8\n", ["train.max_step=3"], "train.max_step"),
        ("model:\n  d_model: eight\n", [], "model.d_model"),
        ("data:\n  batch_size: 0\n", ["train.max_steps=1"], "batch_size"),
        ("train:\n  lr: .nan\n", [], "lr"),
        ("# nothing but a comment\n", [], "empty"),
        ("run_dir: {ws}/report_file\n", ["train.max_steps=1"], "report_file"),
        ("export: {ws}/report_file/model\n", ["train.max_steps=1", "run_dir={ws}/run", *TINY], "report_file"),
    ],
)
def test_recipe_mistakes_fail_before_training(ws, capsys, yaml_text, overrides, needle):
    recipe = _recipe(ws, yaml_text.format(ws=ws))
    before = _snapshot(ws)
    rc, _, err = run(capsys, "text", "train", "--config", recipe, "--quiet", *(o.format(ws=ws) for o in overrides))
    assert_user_error(rc, err, needle)
    assert _snapshot(ws) == before


# ------------------------------------------------------------------------------------------- the real command


def _maskzoo(*argv, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "maskzoo.core.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_real_command_out_dev_stdout_and_a_bad_input(ws):
    before = _snapshot(ws)
    r = _maskzoo("text", "generate", *FAST, "--out", "/dev/stdout", "--quiet", cwd=ws)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip()) > 0
    r = _maskzoo("protein", "score", "empty.fasta", cwd=ws)
    assert_user_error(r.returncode, r.stderr, "empty.fasta")
    assert _snapshot(ws) == before


@pytest.mark.slow  # the in-process pipe case is in tests/core/test_fileio.py
def test_real_command_writes_through_a_named_pipe(ws):
    fifo = ws / "pipe"
    os.mkfifo(fifo)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "maskzoo.core.cli", "text", "generate", *FAST, "--quiet",
                             "--out", str(fifo)], env=env, stderr=subprocess.PIPE, text=True)
    with open(fifo, encoding="utf-8") as f:  # blocks until the command opens the pipe
        got = f.read()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert got.strip()
    assert fifo.exists() and not fifo.is_file()



def _training_verbs() -> list[tuple[str, str]]:
    """Every installed ``maskzoo AREA VERB`` that takes a ``--config`` recipe."""
    from maskzoo.core.cli import build_parser

    def sub(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    return [(area, verb) for area, ap in sub(build_parser()).items() for verb, vp in sub(ap).items()
            if any("--config" in a.option_strings for a in vp._actions)]


def test_every_training_verb_says_recipe_not_found(ws, capsys):
    verbs = _training_verbs()
    assert ("text", "train") in verbs and len(verbs) >= 2
    before = _snapshot(ws)
    for area, verb in verbs:
        rc, _, err = run(capsys, area, verb, "--config", ws / "no_such_recipe.yaml")
        assert_user_error(rc, err, "recipe not found", "no_such_recipe.yaml")
    assert _snapshot(ws) == before
