"""Installing one modality package brings only the core and that package's own dependencies (DESIGN.md).

``pip install --dry-run --report`` resolves ``pip install packages/core packages/<area>`` in a fresh virtual
environment (no packages of ours installed in it) and the test reads the full set of distributions pip would
install.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INSTALL_SETS = {
    # area: (must be installed, must never be installed)
    "protein": ({"maskzoo-core", "maskzoo-protein", "fair-esm", "torch"},
                {"timm", "open-clip-torch", "torchvision", "torchaudio", "soundfile"}),
    "vision": ({"maskzoo-core", "maskzoo-vision", "timm", "open-clip-torch", "torch"},
               {"fair-esm", "torchaudio", "soundfile"}),
    "audio": ({"maskzoo-core", "maskzoo-audio", "torchaudio", "soundfile", "torch"},
              {"timm", "open-clip-torch", "torchvision", "fair-esm"}),
}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def fresh_pip(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "pip"


@pytest.mark.parametrize("area", sorted(INSTALL_SETS))
def test_installing_one_area_pulls_only_its_own_dependencies(area: str, fresh_pip: Path, tmp_path: Path):
    required, forbidden = INSTALL_SETS[area]
    report = tmp_path / "report.json"
    subprocess.run(
        [str(fresh_pip), "install", "-q", "--dry-run", "--ignore-installed", "--report", str(report),
         str(ROOT / "packages" / "core"), str(ROOT / "packages" / area)],
        check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    names = {_canon(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert required <= names, required - names
    assert not (names & forbidden), names & forbidden
