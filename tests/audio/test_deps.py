"""maskzoo-audio installs and imports without the vision or protein stacks."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

FORBIDDEN = ("timm", "open_clip_torch", "torchvision", "fair-esm", "transformers", "peft")
PYPROJECT = Path(__file__).resolve().parents[2] / "packages" / "audio" / "pyproject.toml"


def test_declared_dependencies_exclude_vision_protein_and_transformers():
    meta = tomllib.loads(PYPROJECT.read_text())["project"]
    declared = [d.split(";")[0].strip().lower() for d in meta["dependencies"]]
    declared += [d.lower() for extra in meta.get("optional-dependencies", {}).values() for d in extra]
    for name in FORBIDDEN:
        assert not any(d.startswith(name) for d in declared), f"maskzoo-audio must not depend on {name}"
    assert any(d.startswith("torchaudio") for d in declared) and any(d.startswith("soundfile") for d in declared)


def test_importing_the_package_pulls_no_vision_or_protein_module():
    code = ("import sys, maskzoo.audio, maskzoo.audio.cli, maskzoo.audio.inference, maskzoo.audio.train; "
            "print(','.join(m for m in ('esm', 'timm', 'open_clip', 'torchvision', 'transformers', "
            "'maskzoo.vision', 'maskzoo.protein') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
