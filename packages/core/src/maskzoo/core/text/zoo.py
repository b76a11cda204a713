"""Zoo entries of the text area (run lazily by the registry through the ``maskzoo.models`` entry point)."""

from __future__ import annotations

from maskzoo.core.registry import register_model
from maskzoo.core.text.model import DEFAULT_MODEL, embedded_dir


def register() -> None:
    d = embedded_dir(DEFAULT_MODEL)
    register_model(DEFAULT_MODEL, weights_dir=d, card=d / "MODEL_CARD.md",
                   description="character-level masked-diffusion model of tinyshakespeare (embedded default)",
                   tags=("text", "embedded"))
