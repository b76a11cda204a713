"""Shared paths and helpers of tests/audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "fixtures" / "whisper_reference"
ROOT = HERE.parents[1]
FSDD = ROOT / "apps" / "data" / "audio_fsdd"


def reference_features() -> dict[str, np.ndarray]:
    with np.load(REFERENCE / "features.npz") as z:
        return {k: z[k] for k in z.files}
