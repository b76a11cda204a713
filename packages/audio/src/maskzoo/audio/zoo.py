"""Zoo entries of the audio package (entry point ``maskzoo.models: audio``).

``audio-fsdd-digits``: the embedded default, trained by ``apps/audio_train_embedded.sh`` (the recipes
``apps/recipes/audio_fsdd_{encoder,lm,stage1,stage2}.yaml``) on FSDD digit utterances; weights and MODEL_CARD.md
ship in ``maskzoo/audio/weights/fsdd-digits``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from torch import nn

DEFAULT_MODEL = "audio-fsdd-digits"
WEIGHTS = Path(str(files("maskzoo.audio") / "weights" / "fsdd-digits"))


def _builder(config: dict[str, Any]) -> nn.Module:
    from maskzoo.audio.model import AudioLanguageModel, AudioModelConfig

    return AudioLanguageModel(AudioModelConfig.from_dict(config))


def register() -> None:
    """Register the embedded model with the core registry (and the architecture on the allow-list)."""
    import maskzoo.audio.model  # noqa: F401  (registers the AudioLanguageModel architecture)
    from maskzoo.core.registry import embedded_config, register_model

    register_model(DEFAULT_MODEL, builder=_builder, default_config=embedded_config(WEIGHTS), weights_dir=WEIGHTS,
                   card=WEIGHTS / "MODEL_CARD.md",
                   description="DIFFA-style spoken-digit model: Whisper-shaped encoder, adapters, diffusion LM",
                   tags=("audio", "asr"))
