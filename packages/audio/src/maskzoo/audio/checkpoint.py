"""Loading audio-language models: a maskzoo directory, a zoo name, or None for the embedded default."""

from __future__ import annotations

import os

from maskzoo.audio.model import AudioLanguageModel
from maskzoo.core.errors import UserError


def load_audio_model(path_or_name: str | os.PathLike | None = None) -> AudioLanguageModel:
    """An :class:`AudioLanguageModel` in eval mode (``None`` = the embedded ``audio-fsdd-digits``)."""
    from maskzoo.audio.zoo import DEFAULT_MODEL
    from maskzoo.core import load_model

    model = load_model(DEFAULT_MODEL if path_or_name is None else path_or_name)
    if not isinstance(model, AudioLanguageModel):
        raise UserError(f"{path_or_name}: not an audio-language model ({type(model).__name__})")
    return model.eval()
