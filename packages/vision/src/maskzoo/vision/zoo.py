"""Zoo entries of the vision package (entry point ``maskzoo.models: vision``).

``vision-scenes-captioner``: the embedded default, trained by ``apps/recipes/vision_scenes_captioner.yaml``
on procedural scenes; weights and MODEL_CARD.md ship in ``maskzoo/vision/weights/scenes-captioner``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from torch import nn

DEFAULT_MODEL = "vision-scenes-captioner"
WEIGHTS = Path(str(files("maskzoo.vision") / "weights" / "scenes-captioner"))


def _builder(config: dict[str, Any]) -> nn.Module:
    from maskzoo.vision.model import VisionLanguageModel, VisionModelConfig

    return VisionLanguageModel(VisionModelConfig.from_dict(config))


def register() -> None:
    """Register the embedded models with the core registry (also imports the architecture allow-list entry)."""
    import maskzoo.vision.model  # noqa: F401  (registers the VisionLanguageModel architecture)
    from maskzoo.core.registry import embedded_config, register_model

    register_model(DEFAULT_MODEL, builder=_builder, default_config=embedded_config(WEIGHTS), weights_dir=WEIGHTS,
                   card=WEIGHTS / "MODEL_CARD.md",
                   description="LLaDA-V style captioner of procedural scenes (timm CNN tower, 48 px)",
                   tags=("vision", "captioning"))


def weights_dir(name: str) -> Path | None:
    """Checkpoint directory of zoo entry ``name`` when it has embedded weights, else None."""
    from maskzoo.core import registry

    if not registry.has_model(name):
        return None
    entry = registry.get_entry(name)
    return entry.weights_dir if entry.weights_dir is not None and entry.weights_dir.is_dir() else None
