"""Reading audio files: any format libsndfile reads (wav, flac, ogg, ...), mixed to mono, resampled to 16 kHz.

Every user mistake becomes one :class:`~maskzoo.core.errors.UserError` line naming the file: not audio, a corrupt
header, no samples, a sample rate of 0, NaN/inf samples, silence, or audio longer than ``max_seconds``.
Integer PCM of any width (8/16/24/32-bit) and float WAVs are read as float32 in [-1, 1] by soundfile; several
channels are averaged. Audio longer than one encoder window is split by :func:`split_windows`, never cut.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from maskzoo.audio.features import SAMPLE_RATE
from maskzoo.core.errors import UserError

MAX_SECONDS = 600.0  # 10 minutes: a longer file is almost certainly not meant for a digit / short-form model
SILENCE_PEAK = 1e-4  # peak amplitude under which a file is treated as silent (-80 dBFS)


def resample(waveform: torch.Tensor, sample_rate: int, target: int = SAMPLE_RATE) -> torch.Tensor:
    """``[..., T]`` at ``sample_rate`` -> ``[..., T * target / sample_rate]`` (torchaudio's windowed sinc)."""
    if sample_rate == target:
        return waveform
    import torchaudio.functional as AF

    return AF.resample(waveform, sample_rate, target)


def check_waveform(x: torch.Tensor, name: str, sample_rate: int = SAMPLE_RATE,
                   max_seconds: float = MAX_SECONDS) -> torch.Tensor:
    """Validate a mono float waveform ``[T]``: finite, not empty, not silent, not longer than ``max_seconds``."""
    if x.dim() != 1:
        raise UserError(f"{name}: expected a mono waveform [T], got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise UserError(f"{name}: the audio is empty (0 samples)")
    if not bool(torch.isfinite(x).all()):
        raise UserError(f"{name}: the audio holds NaN or infinite samples")
    seconds = x.numel() / sample_rate
    if seconds > max_seconds:
        raise UserError(f"{name}: {seconds:.1f} s of audio is longer than the {max_seconds:g} s limit")
    if float(x.abs().max()) < SILENCE_PEAK:
        raise UserError(f"{name}: the audio is silent (peak below -80 dBFS)")
    return x


def read_audio(path: str | os.PathLike, max_seconds: float = MAX_SECONDS) -> torch.Tensor:
    """Read ``path`` as a mono float32 waveform ``[T]`` at 16 kHz (see the module docstring for the checks)."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)  # [T, C]
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{p}: not a readable audio file ({first})") from None
    if sr is None or sr <= 0:
        raise UserError(f"{p}: invalid sample rate {sr}")
    if data.shape[0] == 0:
        raise UserError(f"{p}: the audio is empty (0 samples)")
    x = torch.from_numpy(data).mean(dim=1)  # [T]: channels averaged
    if x.numel() / sr > max_seconds:
        raise UserError(f"{p}: {x.numel() / sr:.1f} s of audio is longer than the {max_seconds:g} s limit")
    if not bool(torch.isfinite(x).all()):
        raise UserError(f"{p}: the audio holds NaN or infinite samples")
    x = resample(x, int(sr))  # [T']
    return check_waveform(x, str(p), max_seconds=max_seconds)


def split_windows(waveform: torch.Tensor, window: int) -> list[torch.Tensor]:
    """``[T]`` -> consecutive pieces of at most ``window`` samples (the last one shorter)."""
    if window <= 0:
        raise ValueError("window must be positive")
    n = max(1, math.ceil(waveform.shape[-1] / window))
    return [waveform[..., i * window:(i + 1) * window] for i in range(n)]
