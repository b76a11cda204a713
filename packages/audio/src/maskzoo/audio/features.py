"""Whisper's log-mel front end, equal to Hugging Face ``WhisperFeatureExtractor`` (Radford et al. 2022).

For a mono waveform ``x`` at 16 kHz, padded with zeros (or cut) to ``n_samples`` (30 s = 480,000):

    S   = |STFT(x)|^2            n_fft 400 (25 ms), hop 160 (10 ms), periodic Hann window, centred
                                 (reflect padding); the last frame is dropped -> [201, n_samples / 160]
    M   = F^T S                  F: [201, n_mels] triangular filters on the Slaney mel scale, Slaney-normalised
    L   = log10(max(M, 1e-10))
    L   = max(L, max(L) - 8)     per example: dynamic range clamped to 80 dB
    out = (L + 4) / 4            -> [n_mels, 3000]

``torchaudio.transforms.MelSpectrogram`` alone differs by ~1.7e-5 at 80 mels (float32 filterbank built
differently); here the filterbank is built in float64 exactly as ``transformers.audio_utils.mel_filter_bank``
does and the STFT is ``torch.stft``, which reproduces the extractor within 1e-4 (tests/audio/test_features.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from maskzoo.core.errors import UserError

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480,000 samples -> 3000 frames
_MIN_LOG_HZ, _MIN_LOG_MEL = 1000.0, 15.0
_LOGSTEP = 27.0 / np.log(6.4)


def hertz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    log_region = freq >= _MIN_LOG_HZ
    mels = np.where(log_region, _MIN_LOG_MEL + np.log(np.maximum(freq, 1e-12) / _MIN_LOG_HZ) * _LOGSTEP, mels)
    return mels


def mel_to_hertz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hertz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    return np.where(mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp((mels - _MIN_LOG_MEL) / _LOGSTEP), freq)


@lru_cache(maxsize=8)
def mel_filters(n_mels: int = 80, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Slaney-normalised triangular mel filters ``[n_fft // 2 + 1, n_mels]`` (float64), 0 Hz to Nyquist.

    Triangle m rises from f_m to f_{m+1} and falls to f_{m+2}, where f = mel_to_hertz(linspace(mel(0),
    mel(sr / 2), n_mels + 2)); each triangle is scaled by 2 / (f_{m+2} - f_m) (constant area).
    """
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0, sample_rate // 2, n_bins)  # [n_bins]
    mel_freqs = np.linspace(hertz_to_mel(0.0), hertz_to_mel(sample_rate / 2), n_mels + 2)
    filter_freqs = mel_to_hertz(mel_freqs)  # [n_mels + 2]
    diff = np.diff(filter_freqs)  # [n_mels + 1]
    slopes = filter_freqs[None, :] - fft_freqs[:, None]  # [n_bins, n_mels + 2]
    down = -slopes[:, :-2] / diff[:-1]  # [n_bins, n_mels]
    up = slopes[:, 2:] / diff[1:]  # [n_bins, n_mels]
    fb = np.maximum(0.0, np.minimum(down, up))  # [n_bins, n_mels]
    fb *= (2.0 / (filter_freqs[2:] - filter_freqs[:n_mels]))[None, :]
    return torch.from_numpy(fb)


def pad_or_trim(waveform: torch.Tensor, n_samples: int = N_SAMPLES) -> torch.Tensor:
    """Zero-pad (right) or cut the last axis to ``n_samples``; callers split long audio first
    (:func:`maskzoo.audio.audio_io.split_windows`), so nothing is cut silently."""
    n = waveform.shape[-1]
    if n >= n_samples:
        return waveform[..., :n_samples]
    return torch.nn.functional.pad(waveform, (0, n_samples - n))


def log_mel_spectrogram(
    waveform: torch.Tensor | np.ndarray, n_mels: int = 80, n_samples: int = N_SAMPLES
) -> torch.Tensor:
    """Whisper log-mel features of 16 kHz audio: ``[T]`` -> ``[n_mels, n_samples / 160]``, ``[B, T]`` ->
    ``[B, n_mels, n_samples / 160]`` (3000 frames for the default 30 s window).

    ``n_mels``: 80 (Whisper up to large-v2) or 128 (large-v3). ``n_samples``: the window the encoder was
    built for (a multiple of 160); input longer than it raises (split it into windows first).
    """
    if n_mels not in (80, 128):
        raise UserError(f"n_mels must be 80 or 128, got {n_mels}")
    if n_samples <= 0 or n_samples % HOP_LENGTH:
        raise UserError(f"n_samples must be a positive multiple of {HOP_LENGTH}, got {n_samples}")
    x = torch.as_tensor(waveform)
    if x.dim() not in (1, 2):
        raise UserError(f"waveform must be [T] or [B, T], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise UserError("waveform must be floating point in [-1, 1] (convert integer PCM first)")
    if x.shape[-1] > n_samples:
        raise UserError(f"waveform of {x.shape[-1]} samples is longer than the {n_samples}-sample window; "
                        "split it into windows first")
    x = pad_or_trim(x.float(), n_samples)  # [(B,) n_samples]
    window = torch.hann_window(N_FFT, device=x.device)  # [400]
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, return_complex=True)  # [(B,) 201, F + 1]
    power = stft[..., :-1].abs() ** 2  # [(B,) 201, F]
    fb = mel_filters(n_mels).to(device=x.device, dtype=torch.float32)  # [201, n_mels]
    mel = fb.T @ power  # [(B,) n_mels, F]
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)  # [(B,) 1, 1]: per example
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0
