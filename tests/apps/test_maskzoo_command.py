"""The installed ``maskzoo`` command as users meet it: every area registered, the zoo reachable from the core."""

from __future__ import annotations

import subprocess
import sys

import pytest

from maskzoo.core.registry import get_entry, list_models


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_every_installed_area_registers_without_warnings():
    r = _run("-m", "maskzoo.core.cli", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    areas = [a for a in ("text", "protein", "vision", "audio") if f"    {a} " in r.stdout]
    assert {"text", "protein", "vision"} <= set(areas)
    for area in areas:  # each area's own module loads cleanly
        r = _run("-m", "maskzoo.core.cli", area, "--help")
        assert r.returncode == 0 and r.stderr == "", (area, r.stderr)


def test_top_level_help_and_version_import_no_torch():
    code = ("import sys\nfrom maskzoo.core.cli import main\n"
            "for argv in (['--help'], ['--version'], ['text', '--help'], ['text', 'generate', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, argv\n"
            "print('torch' in sys.modules)\n")
    r = _run("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_core_load_model_reaches_every_package_through_entry_points():
    # a fresh interpreter that imports only maskzoo.core loads each embedded model by name and by directory
    names = [n for n in list_models() if get_entry(n).weights_dir is not None]
    assert {"text-char-shakespeare", "dsm-pdb-small"} <= set(names)
    code = (
        "import sys\n"
        "from maskzoo.core import load_model\n"
        "from maskzoo.core.registry import get_entry\n"
        f"for name in {names!r}:\n"
        "    by_name = load_model(name)\n"
        "    by_dir = load_model(get_entry(name).weights_dir)\n"
        "    assert type(by_name) is type(by_dir), name\n"
        "    print(name, type(by_dir).__name__)\n"
    )
    r = _run("-c", code)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(names)


def test_unknown_area_or_verb_is_one_line_and_exit_2():
    for args in (["nosuch"], ["text", "nosuch"]):
        r = _run("-m", "maskzoo.core.cli", *args)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_version_of_the_command_and_of_each_area():
    r = _run("-m", "maskzoo.core.cli", "--version")
    assert r.returncode == 0 and r.stdout.startswith("maskzoo-core ")
    r = _run("-m", "maskzoo.core.cli", "text", "--version")
    assert r.returncode == 0 and r.stdout.startswith("maskzoo-core ")


def _verbs():
    import argparse

    from maskzoo.core.cli import build_parser

    def subparsers(p):
        return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})

    parser = build_parser()
    return [(f"{area} {verb}", vp) for area, ap in subparsers(parser).items() for verb, vp in subparsers(ap).items()]


@pytest.mark.parametrize("area", ["text", "protein", "vision", "audio"])
def test_every_option_has_help_and_shows_its_default(area):
    verbs = [(name, p) for name, p in _verbs() if name.split()[0] == area]
    if not verbs:
        pytest.skip(f"area {area} not installed")
    problems = []
    for name, p in verbs:
        for a in p._actions:
            if not a.option_strings or a.help == "==SUPPRESS==" or a.dest in ("help", "version"):
                continue
            if not a.help:
                problems.append(f"{name} {a.option_strings[0]}: no help")
            elif a.default not in (None, False, [], ()) and "default" not in a.help and not a.required:
                problems.append(f"{name} {a.option_strings[0]}: default {a.default!r} not shown")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("area", ["text", "protein", "vision", "audio"])
def test_shared_option_names_are_spelled_the_same_everywhere(area):
    # one spelling per idea: --out (not --output), --length (not --gen-length), --checkpoint, --batch-size
    verbs = [(name, p) for name, p in _verbs() if name.split()[0] == area]
    if not verbs:
        pytest.skip(f"area {area} not installed")
    banned = {"--output", "--gen-length", "--gen_length", "--batch_size", "--ckpt", "--model-dir", "--n", "--n-samples",
              "--num-samples-gen", "--outdir", "--output-dir"}
    found = [f"{name} {s}" for name, p in verbs for a in p._actions for s in a.option_strings if s in banned]
    assert not found, found
