"""Held-out evaluation of a digit model: WER / CER of transcripts and exact-match accuracy of every task on
clean composed utterances of one speaker, plus the real-time factor of decoding.

    RTF = wall time of transcribing / duration of the audio transcribed        (< 1: faster than real time)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.audio.digits import Augment, DigitUtterances, Utterance, load_bank
from maskzoo.audio.inference import answer_windows
from maskzoo.audio.metrics import cer, wer
from maskzoo.audio.model import AudioLanguageModel
from maskzoo.audio.tasks import TASKS, TRANSCRIBE, example


def heldout_utterances(data_dir: str | Path, speaker: str, n: int, window: int, max_digits: int = 4,
                       seed: int = 10_000) -> list[Utterance]:
    """``n`` clean (unaugmented) utterances of ``speaker``, the same for every model and run."""
    clean = Augment(speed=False, gain_db=(0.0, 0.0), noise_prob=0.0)
    data = DigitUtterances(load_bank(str(Path(data_dir).resolve())), (speaker,), max_digits, window, seed=seed,
                           augment=clean)
    return [data[i] for i in range(n)]


@dataclass
class TaskResult:
    task: str
    accuracy: float
    hyps: list[str]
    refs: list[str]
    questions: list[str]


@torch.no_grad()
def evaluate_tasks(model: AudioLanguageModel, utts: list[Utterance], tasks=TASKS, settings=None,
                   batch_size: int = 32) -> dict[str, TaskResult]:
    out = {}
    for task in tasks:
        rng = random.Random(f"eval/{task}")
        qa = [example(task, u.digits, rng) for u in utts]
        hyps = answer_windows(model, [u.waveform for u in utts], [q for q, _ in qa], settings, batch_size)
        refs = [a for _, a in qa]
        out[task] = TaskResult(task, sum(h == r for h, r in zip(hyps, refs)) / len(utts), hyps, refs,
                               [q for q, _ in qa])
    return out


def transcription_metrics(result: TaskResult) -> dict[str, float]:
    return {"wer": wer(result.hyps, result.refs), "cer": cer(result.hyps, result.refs),
            "utterance_accuracy": result.accuracy}


@torch.no_grad()
def real_time_factor(model: AudioLanguageModel, utts: list[Utterance], steps: int, batch_size: int,
                     repeats: int = 1) -> float:
    """Seconds of compute per second of audio for transcribing ``utts`` with ``steps`` sampling steps."""
    waves = [u.waveform for u in utts]
    seconds = sum(w.numel() for w in waves) / 16_000
    settings = {"steps": steps}
    answer_windows(model, waves[:batch_size], [TRANSCRIBE] * min(batch_size, len(waves)), settings, batch_size)
    t0 = time.perf_counter()
    for _ in range(repeats):
        answer_windows(model, waves, [TRANSCRIBE] * len(waves), settings, batch_size)
    return (time.perf_counter() - t0) / repeats / seconds
