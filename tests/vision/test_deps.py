"""maskzoo-vision installs and imports without the protein or audio stacks."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

FORBIDDEN = ("fair-esm", "torchaudio", "soundfile")
PYPROJECT = Path(__file__).resolve().parents[2] / "packages" / "vision" / "pyproject.toml"


def test_declared_dependencies_exclude_protein_and_audio():
    meta = tomllib.loads(PYPROJECT.read_text())["project"]
    declared = [d.split(";")[0].strip().lower() for d in meta["dependencies"]]
    declared += [d.lower() for extra in meta.get("optional-dependencies", {}).values() for d in extra]
    for name in FORBIDDEN:
        assert not any(d.startswith(name) for d in declared), f"maskzoo-vision must not depend on {name}"
    assert any(d.startswith("timm") for d in declared) and any(d.startswith("open_clip_torch") for d in declared)


def test_importing_the_package_pulls_no_protein_or_audio_module():
    code = ("import sys, maskzoo.vision, maskzoo.vision.cli, maskzoo.vision.caption, maskzoo.vision.train; "
            "print(','.join(m for m in ('esm', 'torchaudio', 'soundfile', 'maskzoo.protein') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
