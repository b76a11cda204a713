"""The installed ``maskzoo`` command as users meet it: every area registered, the zoo reachable from the core."""

from __future__ import annotations

import subprocess
import sys

from maskzoo.core.registry import get_entry, list_models


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_every_installed_area_registers_without_warnings():
    r = _run("-m", "maskzoo.core.cli", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    for area in ("text", "protein", "vision"):
        assert area in r.stdout


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
