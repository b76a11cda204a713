"""The shared CLI options of maskzoo.core.cli: value types (property-based), defaults, generation settings."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskzoo.core import cli
from maskzoo.core.errors import UserError
from maskzoo.core.generation_config import resolve_generation, validate_generation_block

PROPS = settings(max_examples=300, deadline=None)
texts = st.one_of(st.text(max_size=12), st.integers().map(str), st.floats().map(repr),
                  st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400", "-0", "0", "0.0", " 3 ", "1_000", "1e3"]))


def _accepts(fn, text):
    try:
        return True, fn(text)
    except argparse.ArgumentTypeError as e:
        assert "\n" not in str(e) and str(e)
        return False, None


def _as_int(text):
    try:
        return int(text.strip())
    except ValueError:
        return None


def _as_float(text):
    try:
        v = float(text.strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


@PROPS
@given(texts)
def test_integer_types_accept_exactly_their_range(text):
    n = _as_int(text)
    for fn, ok in ((cli.positive_int, n is not None and n >= 1), (cli.nonneg_int, n is not None and n >= 0),
                   (cli.seed_int, n is not None and 0 <= n < 2**32)):
        accepted, value = _accepts(fn, text)
        assert accepted == ok, (fn.__name__, text)
        if accepted:
            assert value == n and type(value) is int


@PROPS
@given(texts)
def test_float_types_accept_exactly_their_range(text):
    x = _as_float(text)
    cases = ((cli.positive_float, x is not None and x > 0), (cli.nonneg_float, x is not None and x >= 0),
             (cli.probability, x is not None and 0 < x <= 1), (cli.unit_interval, x is not None and 0 <= x <= 1))
    for fn, ok in cases:
        accepted, value = _accepts(fn, text)
        assert accepted == ok, (fn.__name__, text)
        if accepted:
            assert math.isfinite(value) and value == x


@PROPS
@given(st.text(max_size=10))
def test_device_names(text):
    accepted, _ = _accepts(cli.device_name, text)
    expected = text.strip() in ("cpu", "cuda", "mps", "auto") or (
        text.strip().startswith("cuda:") and text.strip()[5:].isascii() and text.strip()[5:].isdigit())
    assert accepted == expected


def _gen_parser(**defaults):
    p = cli._Parser(prog="t")
    cli.add_generation_options(p, **defaults)
    cli.add_common_options(p)
    cli.add_output_options(p)
    cli.add_batch_size_option(p, 8)
    return p


@pytest.mark.parametrize("argv", [
    ["--temperature", "nan"], ["--temperature", "-1"], ["--temperature", "inf"], ["--steps", "0"],
    ["--length", "-3"], ["--block-length", "0"], ["--num", "0"], ["--top-k", "0"], ["--top-p", "0"],
    ["--top-p", "1.5"], ["--threshold", "nan"], ["--factor", "0"], ["--batch-size", "0"], ["--seed", "-1"],
    ["--threads", "0"], ["--device", "gpu"], ["--cache", "full"], ["--remasking", "nope"], ["--out", "/"],
])
def test_bad_values_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _gen_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and argv[0] in err and "Traceback" not in err


def test_help_shows_every_default_and_the_full_sampler_list(capsys):
    from maskzoo.core.sampling import SAMPLERS

    p = _gen_parser(length=None)
    assert set(cli.SAMPLER_CHOICES) == set(SAMPLERS)
    text = p.format_help()
    for action in p._actions:
        if action.option_strings and action.dest not in ("help", "quiet", "jsonl"):
            assert "default:" in (action.help or ""), action.dest
    assert "generation block" in text
    args = p.parse_args(["--remasking", "random"])
    assert args.remasking == "random" and args.out == "-" and args.batch_size == 8


def test_generation_kwargs_precedence_and_optional_keys():
    p = _gen_parser()
    block = {"gen_length": 64, "temperature": 0.8, "top_p": 0.9, "block_length": 32}
    kw = cli.generation_kwargs(p.parse_args([]), block)
    assert kw == {"gen_length": 64, "steps": 64, "block_length": 32, "temperature": 0.8, "top_p": 0.9,
                  "remasking": "low_confidence"}
    kw = cli.generation_kwargs(p.parse_args(["--temperature", "0", "--length", "96", "--cache", "prefix"]), block)
    assert kw["temperature"] == 0.0 and kw["gen_length"] == 96 and kw["cache"] == "prefix"
    kw = cli.generation_kwargs(p.parse_args(["--cache", "none"]), None, {"gen_length": 8})
    assert "cache" not in kw and "threshold" not in kw and "factor" not in kw and "top_k" not in kw
    with pytest.raises(UserError, match=r"--length.*= 100 is not a multiple of --block-length \(from the "
                                        r"checkpoint's generation block\) = 32"):
        cli.generation_kwargs(p.parse_args(["--length", "100"]), block)
    with pytest.raises(UserError, match="--steps"):
        cli.generation_kwargs(p.parse_args(["--steps", "3"]), block)
    with pytest.raises(UserError, match="--length"):
        cli.generation_kwargs(p.parse_args([]), None)


@pytest.mark.parametrize("block, field", [
    ({"temperature": float("nan")}, "temperature"), ({"steps": 0}, "steps"), ({"top_p": 2}, "top_p"),
    ({"gen_length": "64"}, "gen_length"), ({"colour": 1}, "colour"), ({"steps": True}, "steps"),
    ([1, 2], "mapping"),
])
def test_bad_generation_block_names_the_field(block, field):
    with pytest.raises(UserError, match=field):
        validate_generation_block(block, "m/config.json")


@PROPS
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64))
def test_resolved_settings_always_fit_together(length, block, steps):
    try:
        kw = resolve_generation({"gen_length": length, "block_length": block, "steps": steps})
    except UserError:
        assert length % block or steps % (length // block)
        return
    assert kw["gen_length"] % kw["block_length"] == 0
    assert kw["steps"] % (kw["gen_length"] // kw["block_length"]) == 0


def test_output_path_type(tmp_path):
    assert cli.output_path("-") == "-"
    assert cli.output_path(str(tmp_path / "new" / "x.txt")) == str(tmp_path / "new" / "x.txt")
    (tmp_path / "f").write_text("x")
    for bad in (str(tmp_path), str(tmp_path / "f" / "y.txt"), str(tmp_path) + "/"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.output_path(bad)


def test_apply_common_options_sets_threads_seed_and_device():
    import torch

    p = _gen_parser()
    before = torch.get_num_threads()
    try:
        device = cli.apply_common_options(p.parse_args(["--threads", "1", "--seed", "7"]))
        a = torch.rand(3)
        assert device == torch.device("cpu") and torch.get_num_threads() == 1
        cli.apply_common_options(p.parse_args(["--threads", "1", "--seed", "7"]))
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.set_num_threads(before)
        from maskzoo.core.progress import set_quiet
        set_quiet(False)


def test_core_cli_and_text_area_do_not_import_torch():
    """The core's part of `maskzoo --help`: the parser, the shared options and the text area stay torch-free."""
    code = ("import sys, argparse\n"
            "from maskzoo.core import cli\n"
            "from maskzoo.core.text.cli import register\n"
            "p = cli._Parser(prog='maskzoo'); areas = p.add_subparsers(parser_class=cli._Parser)\n"
            "register(areas); p.format_help(); cli._version_line()\n"
            "t = argparse.ArgumentParser(); cli.add_common_options(t); cli.add_output_options(t)\n"
            "cli.add_generation_options(t); cli.add_checkpoint_option(t); t.format_usage()\n"
            "print(sorted(m for m in ('torch', 'numpy', 'omegaconf') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_version_lines(capsys):
    for argv in (["--version"], ["text", "--version"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
        assert capsys.readouterr().out.startswith("maskzoo-core ")


def test_thread_default_respects_omp_num_threads(monkeypatch):
    from maskzoo.core import threads

    cores = threads.physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    assert threads.default_threads() == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.default_threads() == cores


def test_progress_policy(monkeypatch, capsys):
    from maskzoo.core import progress

    monkeypatch.setenv("MASKZOO_PROGRESS", "1")
    assert progress.bars_enabled() and not progress.bars_enabled(quiet=True)
    assert list(progress.progress(range(3), desc="x", unit="seq")) == [0, 1, 2]
    assert "3/3" in capsys.readouterr().err
    monkeypatch.setenv("MASKZOO_PROGRESS", "0")
    assert not progress.bars_enabled()
    monkeypatch.delenv("MASKZOO_PROGRESS")
    assert not progress.bars_enabled()  # stderr is not a terminal under pytest
    progress.status("hello")
    progress.set_quiet(True)
    progress.status("hidden")
    progress.set_quiet(False)
    assert capsys.readouterr().err == "maskzoo: hello\n"


def test_forward_progress_counts_calls_or_rows(monkeypatch, capsys):
    import torch

    from maskzoo.core.progress import forward_progress

    monkeypatch.setenv("MASKZOO_PROGRESS", "1")
    model = torch.nn.Linear(2, 2)
    with forward_progress(model, 6, desc="scoring", unit="seq", rows=True) as bar:
        model(torch.zeros(4, 2))
        model(torch.zeros(2, 2))
        assert bar.n == 6
    with forward_progress(model, 2, desc="steps") as bar:
        model(torch.zeros(4, 2))
        assert bar.n == 1
    model(torch.zeros(1, 2))  # the hook is gone
    assert bar.n == 1 and not model._forward_hooks
    capsys.readouterr()
