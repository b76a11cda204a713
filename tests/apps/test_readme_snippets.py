"""Every ```python block of every README runs as written from the repository root.

Blocks come from README.md and packages/*/README.md. The blocks of one README run in order in one fresh
interpreter and share their names, as a reader would paste them into one session (a later block may use the
``model`` of an earlier one); one torch thread, offline, the repository root as working directory. A block that
names a ``maskzoo.<package>`` that is not installed is skipped (and so is every later block of that README);
every other block must run without an exception. A failure names the README line of its block.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_PACKAGE = re.compile(r"\bmaskzoo\.(\w+)")


def extract_python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each fenced block whose info string starts with ``python`` / ``py``.

    Handles indented fences (in lists), longer fences (````), tildes, and a closing fence that must match the
    opening one; an unclosed block runs to the end of the file.
    """
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group("fence"), m.group("info").strip().lower(), i + 1
        j = start
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close.group("fence")[0] == fence[0] and len(close.group("fence")) >= len(fence) \
                    and not close.group("info").strip():
                break
            j += 1
        lang = re.split(r"[\s{,]", info, maxsplit=1)[0] if info else ""
        if lang in ("python", "py", "python3"):
            blocks.append((start + 1, textwrap.dedent("\n".join(lines[start:j]))))
        i = j + 1
    return blocks


_DRIVER = """
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for line, code in blocks:
    try:
        exec(compile(code, f"README line {line}", "exec"), namespace)
    except BaseException:
        sys.stderr.write(f"@@ block at line {line} failed\\n{code}\\n")
        traceback.print_exc()
        sys.exit(1)
"""


def _cases() -> list:
    cases = []
    for readme in READMES:
        if readme.is_file() and extract_python_blocks(readme.read_text(encoding="utf-8")):
            cases.append(pytest.param(readme, id=str(readme.relative_to(ROOT))))
    return cases


def _missing_packages(code: str) -> list[str]:
    return sorted({p for p in _PACKAGE.findall(code) if importlib.util.find_spec(f"maskzoo.{p}") is None})


@pytest.mark.parametrize("readme", _cases())
def test_readme_python_blocks_run(readme: Path):
    blocks = extract_python_blocks(readme.read_text(encoding="utf-8"))
    runnable = []
    for line, code in blocks:
        if _missing_packages(code):
            break  # later blocks may build on this one
        runnable.append((line, code))
    if not runnable:
        pytest.skip(f"{readme.name}: needs maskzoo.{', maskzoo.'.join(_missing_packages(blocks[0][1]))}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASKZOO_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(runnable), cwd=ROOT, capture_output=True,
                       text=True, timeout=600, env=env)
    assert r.returncode == 0, f"{readme.relative_to(ROOT)}: {r.stderr[-3000:]}"


def test_extractor_handles_fences_robustly():
    text = textwrap.dedent("""\
        intro
        ```python
        a = 1
        ```
        - item

          ```py
          b = 2
          ```
        ````python title="x"
        c = "```"
        ````
        ```sh
        echo no
        ```
        ~~~python
        d = 4
        ~~~
        ```python""")
    blocks = extract_python_blocks(text)
    assert [code for _, code in blocks] == ["a = 1", "b = 2", 'c = "```"', "d = 4", ""]
    assert blocks[0][0] == 3


def test_every_readme_has_been_found():
    assert READMES[0].is_file() and len(_cases()) >= 2
