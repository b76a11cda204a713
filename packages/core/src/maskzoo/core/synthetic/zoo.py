"""Zoo entry of the synthetic-task model (run lazily by the registry through the ``maskzoo.models`` entry point)."""

from __future__ import annotations

from pathlib import Path

from maskzoo.core.registry import register_model

MODEL = "synthetic-tasks"


def weights_dir() -> Path:
    return Path(__file__).parent / "zoo" / MODEL


def register() -> None:
    d = weights_dir()
    register_model(MODEL, weights_dir=d, card=d / "MODEL_CARD.md",
                   description="masked-diffusion model of five exact-answer digit tasks (fast-decoding benchmark)",
                   tags=("synthetic", "embedded"))
