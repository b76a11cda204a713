"""Composed multi-digit utterances from real FSDD recordings, with augmentation (training data of the embedded
models).

An utterance is 1..``max_digits`` single-digit recordings of ONE speaker, joined by random pauses:

    x = [lead silence] r_1 [pause] r_2 ... r_n [tail silence]       (16 kHz; r_i a recording of digit d_i)

then augmented (each step drawn per utterance, Ko et al. 2015 speed perturbation; Park et al. 2019 SpecAugment
is applied to the features by :func:`spec_augment`):

    speed  x <- resample(x) by a factor in [0.85, 1.15]   (changes tempo and pitch together)
    gain   x <- g x,  g = 10^(u / 20), u in [-12, 6] dB, then clipped to [-1, 1]
    noise  x <- x + n, white noise at an SNR in [10, 40] dB (with probability 0.7)

Item ``i`` of a :class:`DigitUtterances` set is a pure function of ``(seed, i)``, so the data stream is exactly
reproducible and resumable. The held-out speaker is never drawn by a training set.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from maskzoo.audio.audio_io import resample
from maskzoo.audio.features import SAMPLE_RATE
from maskzoo.core.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEED_FACTORS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)


class DigitBank:
    """Recordings of a speech-digit folder (``manifest.csv`` with ``file,digit,speaker`` columns), resampled
    to 16 kHz once: ``bank.clips[speaker][digit]`` is a list of waveforms ``[T]``."""

    def __init__(self, root: str | Path) -> None:
        import soundfile as sf

        self.root = Path(root)
        manifest = self.root / "manifest.csv"
        if not manifest.is_file():
            raise UserError(f"{self.root}: no manifest.csv (a folder like apps/data/audio_fsdd is expected)")
        self.clips: dict[str, dict[int, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f):
                data, sr = sf.read(str(self.root / "recordings" / row["file"]), dtype="float32")
                x = resample(torch.from_numpy(data), int(sr))  # [T] at 16 kHz
                self.clips[row["speaker"]][int(row["digit"])].append(x)

    @property
    def speakers(self) -> list[str]:
        return sorted(self.clips)


@lru_cache(maxsize=4)
def load_bank(root: str) -> DigitBank:
    return DigitBank(root)


@dataclass
class Utterance:
    waveform: torch.Tensor  # [T] at 16 kHz
    digits: tuple[int, ...]
    speaker: str
    spans: tuple[tuple[int, int], ...] = ()  # (start, end) sample of each digit's recording

    @property
    def text(self) -> str:
        return " ".join(DIGIT_WORDS[d] for d in self.digits)


@dataclass
class Augment:
    """Waveform augmentation probabilities and ranges (see the module docstring)."""

    speed: bool = True
    gain_db: tuple[float, float] = (-12.0, 6.0)
    noise_prob: float = 0.7
    snr_db: tuple[float, float] = (10.0, 40.0)

    def __call__(self, x: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, float]:
        """Augmented ``x`` and the time-stretch factor applied to it (output length / input length)."""
        stretch = 1.0
        if self.speed:
            f = rng.choice(SPEED_FACTORS)
            if f != 1.0:
                target = int(round(SAMPLE_RATE / f / 100)) * 100
                x = resample(x, SAMPLE_RATE, target)  # [T / f]
                stretch = target / SAMPLE_RATE
        x = x * 10 ** (rng.uniform(*self.gain_db) / 20)
        if rng.random() < self.noise_prob:
            power = x.pow(2).mean().clamp_min(1e-10)
            snr = 10 ** (rng.uniform(*self.snr_db) / 10)
            g = torch.Generator().manual_seed(rng.getrandbits(62))
            x = x + torch.randn(x.shape, generator=g) * (power / snr).sqrt()
        return x.clamp(-1.0, 1.0), stretch


@dataclass
class DigitUtterances(torch.utils.data.Dataset):
    """Random utterances of ``speakers`` from ``bank``; item ``i`` depends only on ``(seed, i)``."""

    bank: DigitBank
    speakers: tuple[str, ...]
    max_digits: int = 4
    max_samples: int = 4 * SAMPLE_RATE
    seed: int = 0
    augment: Augment | None = field(default_factory=Augment)
    size: int = 10_000_000

    def __post_init__(self) -> None:
        missing = [s for s in self.speakers if s not in self.bank.clips]
        if missing or not self.speakers:
            raise UserError(f"speaker(s) {missing or '[]'} not in the data (have {self.bank.speakers})")
        if self.max_digits < 1:
            raise UserError("max_digits must be >= 1")

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Utterance:
        rng = random.Random(f"digits/{self.seed}/{i}")
        for _ in range(100):  # rejection: the utterance must fit the encoder window after augmentation
            speaker = rng.choice(self.speakers)
            digits = tuple(rng.randrange(10) for _ in range(rng.randint(1, self.max_digits)))
            parts = [torch.zeros(int(rng.uniform(0.0, 0.3) * SAMPLE_RATE))]
            spans, pos = [], parts[0].numel()
            for k, d in enumerate(digits):
                if k:
                    parts.append(torch.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)))
                    pos += parts[-1].numel()
                parts.append(rng.choice(self.bank.clips[speaker][d]))
                spans.append((pos, pos + parts[-1].numel()))
                pos += parts[-1].numel()
            parts.append(torch.zeros(int(rng.uniform(0.0, 0.3) * SAMPLE_RATE)))
            x = torch.cat(parts)  # [T]
            stretch = 1.0
            if self.augment is not None:
                x, stretch = self.augment(x, rng)
            if x.numel() <= self.max_samples:
                spans = tuple((int(a * stretch), int(b * stretch)) for a, b in spans)
                return Utterance(x, digits, speaker, spans)
        raise UserError(f"cannot fit {self.max_digits} digits in {self.max_samples} samples; raise the window")


def channel_eq(mel: torch.Tensor, generator: torch.Generator, max_db: float, n_terms: int = 3) -> torch.Tensor:
    """Random microphone/room colouring: add a smooth curve over the mel axis to Whisper's normalised log-mel.

    Each recording setup filters speech by its own frequency response H(f); in the log domain that is an additive
    curve log|H|^2 over frequency, constant in time. Four training speakers are four microphones, so an encoder
    can tell them (and a fifth) apart by colouring alone; this draws one curve per example

        c(m) = sum_{k=1..n_terms} a_k cos(pi k (m + 1/2) / M),   a_k ~ U(-1, 1) * max_db / (40 n_terms)

    (Whisper's features are log10(power) / 4, so 40 dB is one unit) and returns ``mel + c``.
    ``mel [B, M, F]`` -> same shape."""
    if max_db <= 0:
        return mel
    b, m, _ = mel.shape
    k = torch.arange(1, n_terms + 1, dtype=mel.dtype)  # [K]
    basis = torch.cos(torch.pi * k[:, None] * (torch.arange(m, dtype=mel.dtype) + 0.5) / m)  # [K, M]
    a = (torch.rand(b, n_terms, generator=generator, dtype=mel.dtype) * 2 - 1) * max_db / (40 * n_terms)  # [B, K]
    return mel + (a @ basis)[:, :, None]  # [B, M, F]


def spec_augment(mel: torch.Tensor, generator: torch.Generator, n_freq: int = 2, max_f: int = 10,
                 n_time: int = 2, max_t: int = 25) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) without time warping: ``n_freq`` bands of up to ``max_f`` mel bins and
    ``n_time`` spans of up to ``max_t`` frames set to the example's mean. ``mel [B, M, F]`` -> same shape."""
    out = mel.clone()
    b, m, f = mel.shape
    fill = mel.mean(dim=(1, 2))  # [B]
    for i in range(b):
        for _ in range(n_freq):
            w = int(torch.randint(0, max_f + 1, (), generator=generator))
            s = int(torch.randint(0, max(1, m - w), (), generator=generator))
            out[i, s:s + w, :] = fill[i]
        for _ in range(n_time):
            w = int(torch.randint(0, max_t + 1, (), generator=generator))
            s = int(torch.randint(0, max(1, f - w), (), generator=generator))
            out[i, :, s:s + w] = fill[i]
    return out
