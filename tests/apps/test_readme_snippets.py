"""Every ```python block of every README runs as written from the repository root.

Blocks come from README.md and packages/*/README.md. Each runs in a fresh interpreter (one torch thread, offline)
with the repository root as working directory. A block that imports a ``maskzoo.<package>`` that is not
installed is skipped; everything else must exit 0. Blocks of one README run in order, separately.
"""

from __future__ import annotations

import importlib.util
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


def _cases() -> list:
    cases = []
    for readme in READMES:
        if not readme.is_file():
            continue
        rel = readme.relative_to(ROOT)
        for line, code in extract_python_blocks(readme.read_text(encoding="utf-8")):
            cases.append(pytest.param(code, id=f"{rel}:{line}"))
    return cases


def _missing_packages(code: str) -> list[str]:
    return sorted({p for p in _PACKAGE.findall(code) if importlib.util.find_spec(f"maskzoo.{p}") is None})


@pytest.mark.parametrize("code", _cases())
def test_readme_python_block_runs(code: str):
    missing = _missing_packages(code)
    if missing:
        pytest.skip(f"needs maskzoo.{', maskzoo.'.join(missing)} (not installed)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASKZOO_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"


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
