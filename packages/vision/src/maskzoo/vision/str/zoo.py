"""Zoo entries of the scene-text models (entry point ``maskzoo.models: vision-str``).

``vision-str-mdiff``: the embedded default of ``maskzoo vision read-text``, trained by
``apps/recipes/vision_str_mdiff.yaml``, ``vision_str_mdiff_long.yaml`` and ``vision_str_mdiff_stage3.yaml``;
``vision-str-ar``: the autoregressive baseline of the same size trained the same way
(``apps/recipes/vision_str_ar.yaml`` then ``vision_str_ar_long.yaml``), kept for the benchmark. Weights and
MODEL_CARD.md ship in ``maskzoo/vision/str/weights/<name>``.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskzoo.core.errors import UserError

DEFAULT_MODEL = "vision-str-mdiff"
BASELINE_MODEL = "vision-str-ar"
WEIGHTS_ROOT = Path(str(files("maskzoo.vision.str") / "weights"))


def _builder(config: dict[str, Any]) -> nn.Module:
    from maskzoo.vision.str.model import STRConfig, STRModel

    return STRModel(STRConfig.from_dict(config))


def register() -> None:
    """Register the STR models with the core registry (and the ``STRModel`` architecture)."""
    import maskzoo.vision.str.model  # noqa: F401  (registers the STRModel architecture)
    from maskzoo.core.registry import embedded_config, register_model

    for name, what in ((DEFAULT_MODEL, "MDiff4STR scene-text recognizer (SVTRv2-style encoder, masked diffusion)"),
                       (BASELINE_MODEL, "autoregressive scene-text baseline of the same size (benchmark)")):
        register_model(name, builder=_builder, default_config=embedded_config(WEIGHTS_ROOT / name), weights_dir=WEIGHTS_ROOT / name,
                       card=WEIGHTS_ROOT / DEFAULT_MODEL / "MODEL_CARD.md", description=what,
                       tags=("vision", "scene-text"))


def load_str_model(name_or_path: str | os.PathLike | None = None, device: torch.device | str = "cpu"):
    """An :class:`~maskzoo.vision.str.model.STRModel` from a zoo name or a model directory (default: the
    embedded model), in eval mode."""
    from maskzoo.core.checkpoint import load_model
    from maskzoo.vision.str.model import STRModel

    register()
    target = DEFAULT_MODEL if name_or_path is None else name_or_path
    model = load_model(target, device=device)
    if not isinstance(model, STRModel):
        raise UserError(f"{target} is not a scene-text recognition model ({type(model).__name__})")
    return model.eval()
