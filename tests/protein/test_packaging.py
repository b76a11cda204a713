"""Installing maskzoo-protein brings only the core and fair-esm: never timm, open_clip, torchvision, torchaudio.

The fast test walks the declared requirement metadata of the installed distributions (base requirements, no
extras); tests/apps/test_install_sets.py resolves ``pip install packages/core packages/protein`` in a fresh
virtual environment.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

FORBIDDEN = {"timm", "open-clip-torch", "torchvision", "torchaudio"}
ROOT = Path(__file__).resolve().parents[2]


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_requirements(dist: str) -> list[str]:
    from packaging.requirements import Requirement

    out = []
    for line in requires(dist) or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra (plots, esmfold, ...)
        out.append(_canon(req.name))
    return out


def test_declared_dependency_closure_is_lean():
    seen: set[str] = set()
    todo = ["maskzoo-protein"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(_base_requirements(name))
        except PackageNotFoundError:
            pass
    assert {"maskzoo-core", "fair-esm", "torch"} <= seen
    assert not (seen & FORBIDDEN), seen & FORBIDDEN
    assert set(_base_requirements("maskzoo-protein")) == {"maskzoo-core", "fair-esm"}
