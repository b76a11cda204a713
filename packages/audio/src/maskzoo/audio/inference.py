"""Transcription and question answering with an :class:`AudioLanguageModel` and the core sampler.

``transcribe(model, waveforms)``: each waveform (16 kHz, any length) is split into encoder windows
(:func:`~maskzoo.audio.audio_io.split_windows`); every window is answered with the question "transcribe the
audio." and the window transcripts are joined. ``ask(model, waveforms, question)``: one window per waveform.
Windows are batched (``batch_size`` at a time); the encoder and adapters run once per batch and the LM runs
``steps`` times through :func:`maskzoo.core.generate` (low-confidence remasking, greedy by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from maskzoo.audio.audio_io import check_waveform, split_windows
from maskzoo.audio.model import AudioLanguageModel
from maskzoo.audio.tasks import TRANSCRIBE, prompt_ids
from maskzoo.core.errors import UserError
from maskzoo.core.sampling import generate


def decode_settings(model: AudioLanguageModel, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`maskzoo.core.generate`: ``settings`` over the model's defaults
    (``gen_length`` = ``steps`` = ``block_length`` = the model's answer length, greedy, low-confidence)."""
    out: dict[str, Any] = {"gen_length": model.config.gen_length, "steps": model.config.steps,
                           "block_length": None, "temperature": 0.0, "remasking": "low_confidence"}
    out.update({k: v for k, v in (settings or {}).items() if v is not None})
    if out["block_length"] is None:
        out["block_length"] = out["gen_length"]
    return out


def _pad_batch(waves: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    return torch.stack([torch.nn.functional.pad(w, (0, n - w.numel())) for w in waves])  # [B, n]


@torch.no_grad()
def answer_windows(model: AudioLanguageModel, windows: Sequence[torch.Tensor], questions: Sequence[str],
                   settings: Mapping[str, Any] | None = None, batch_size: int = 16,
                   generator: torch.Generator | None = None, progress=None) -> list[str]:
    """One answer per ``(window, question)``; each window at most ``model.window_samples`` long."""
    kwargs = decode_settings(model, settings)
    gen = kwargs["gen_length"]
    tok = model.tokenizer
    if tok is None:
        raise UserError("this audio model has no tokenizer")
    if batch_size < 1:
        raise UserError("batch_size must be >= 1")
    device = next(model.parameters()).device
    model.eval()
    out: list[str] = []
    for lo in range(0, len(windows), batch_size):
        waves = _pad_batch(windows[lo:lo + batch_size], model.window_samples).to(device)  # [b, S]
        audio = model.encode_audio(waves)  # [b, A, D]
        prompts = [prompt_ids(tok, q, audio.shape[1]) for q in questions[lo:lo + batch_size]]
        ids = generate(model.denoiser(audio), prompts, pad_id=tok.pad_id, eos_id=tok.eos_id, generator=generator,
                       **kwargs)  # [b, P + gen]
        out += [tok.decode(row[-gen:].tolist()) for row in ids]
        if progress is not None:
            progress.update(len(prompts))
    return out


def _checked(waveforms: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    if isinstance(waveforms, torch.Tensor):
        waveforms = [waveforms] if waveforms.dim() == 1 else list(waveforms)
    return [check_waveform(torch.as_tensor(w, dtype=torch.float32), f"waveform {i}") for i, w in enumerate(waveforms)]


def transcribe(model: AudioLanguageModel, waveforms: Sequence[torch.Tensor] | torch.Tensor,
               settings: Mapping[str, Any] | None = None, batch_size: int = 16,
               generator: torch.Generator | None = None) -> list[str]:
    """Transcripts of 16 kHz mono waveforms (``[T]`` each, or ``[B, T]``); long audio goes window by window."""
    waves = _checked(waveforms)
    pieces = [split_windows(w, model.window_samples) for w in waves]
    flat = [p for ps in pieces for p in ps]
    texts = answer_windows(model, flat, [TRANSCRIBE] * len(flat), settings, batch_size, generator)
    out, k = [], 0
    for ps in pieces:
        out.append(" ".join(t for t in texts[k:k + len(ps)] if t))
        k += len(ps)
    return out


def ask(model: AudioLanguageModel, waveforms: Sequence[torch.Tensor] | torch.Tensor, question: str | Sequence[str],
        settings: Mapping[str, Any] | None = None, batch_size: int = 16,
        generator: torch.Generator | None = None) -> list[str]:
    """Answers to ``question`` (one for all, or one per waveform) about each waveform (one window each)."""
    waves = _checked(waveforms)
    questions = [question] * len(waves) if isinstance(question, str) else list(question)
    if len(questions) != len(waves):
        raise UserError(f"{len(questions)} questions for {len(waves)} waveforms")
    for i, w in enumerate(waves):
        if w.numel() > model.window_samples:
            raise UserError(f"waveform {i}: {w.numel() / 16000:.1f} s is longer than the model's "
                            f"{model.window_samples / 16000:g} s window; questions are answered about one window")
    for q in set(questions):
        model.tokenizer.encode(q)  # unknown words -> one UserError line, before any work
    return answer_windows(model, waves, questions, settings, batch_size, generator)
