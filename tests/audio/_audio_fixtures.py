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


def tiny_model(**overrides):
    """A randomly initialised small AudioLanguageModel (Whisper encoder of 1 s windows, every adapter)."""
    import torch

    from maskzoo.audio.model import AudioLanguageModel, AudioModelConfig
    from maskzoo.audio.tasks import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    lm = dict(vocab_size=len(tok), d_model=32, n_layers=2, n_heads=2, mask_token_id=tok.mask_id, max_seq_len=128)
    enc = dict(family="whisper", n_mels=80, d_model=16, n_layers=2, n_heads=2, ffn_dim=32, max_source_positions=50)
    cfg = dict(lm=lm, encoder=enc, n_soft_prompts=2, acoustic=dict(taps=[0, 1], n_queries=3, n_heads=2),
               semantic=True, window=None, tokenizer=tok.to_dict(), gen_length=8, steps=8)
    cfg.update(overrides)
    return AudioLanguageModel(AudioModelConfig(**cfg))
