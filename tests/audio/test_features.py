"""Whisper log-mel features equal Hugging Face WhisperFeatureExtractor's (reference made outside the repo)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _audio_fixtures import reference_features

from maskzoo.audio import log_mel_spectrogram
from maskzoo.audio.features import hertz_to_mel, mel_filters, mel_to_hertz
from maskzoo.core.errors import UserError

REF = reference_features()


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("name", ["chirp", "speech"])
def test_single_waveform_matches_whisper_feature_extractor(n_mels: int, name: str):
    mel = log_mel_spectrogram(torch.from_numpy(REF[f"wave_{name}"]), n_mels=n_mels)
    ref = torch.from_numpy(REF[f"mel{n_mels}_{name}"])
    assert mel.shape == ref.shape == (n_mels, 3000)
    assert (mel - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("n_mels", [80, 128])
def test_batch_matches_and_clamps_per_example(n_mels: int):
    waves = [REF["wave_chirp"], REF["wave_speech"]]
    batch = torch.zeros(2, max(len(w) for w in waves))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)  # zero padding, as the extractor pads
    mel = log_mel_spectrogram(batch, n_mels=n_mels)  # [2, n_mels, 3000]
    ref = torch.from_numpy(REF[f"mel{n_mels}_batch"])
    assert (mel - ref).abs().max().item() < 1e-4
    # each example has its own 80 dB floor: the rows differ from a clamp over the whole batch
    assert not torch.allclose(mel[0].min(), mel[1].min())


def test_mel_scale_round_trip_and_filters_cover_the_band():
    f = np.array([0.0, 500.0, 1000.0, 4000.0, 8000.0])
    assert np.allclose(mel_to_hertz(hertz_to_mel(f)), f)
    fb = mel_filters(80)  # [201, 80]
    assert fb.shape == (201, 80) and fb.dtype == torch.float64
    assert (fb.sum(0) > 0).all()  # no empty filter


def test_pads_short_input_and_rejects_long_or_integer_input():
    short = log_mel_spectrogram(torch.zeros(100) + 0.1, n_samples=16000)
    assert short.shape == (80, 100)
    with pytest.raises(UserError, match="longer than"):
        log_mel_spectrogram(torch.zeros(480_001))
    with pytest.raises(UserError, match="floating point"):
        log_mel_spectrogram(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(UserError, match="n_mels"):
        log_mel_spectrogram(torch.zeros(100), n_mels=64)
