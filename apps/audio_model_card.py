"""Write MODEL_CARD.md of the embedded audio model from measurements (run after apps/audio_train_embedded.sh).

    python apps/audio_model_card.py [--model DIR] [--runs runs] [--utterances 200] [--out CARD.md]

Measures on the held-out speaker (lucas, never trained on): transcript WER / CER and utterance accuracy, every
task's exact-match accuracy, the real-time factor at batch 1 and 16, and lists failure cases; reads steps and
wall time of each stage from runs/audio_*/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from maskzoo.audio.checkpoint import load_audio_model
from maskzoo.audio.evaluate import evaluate_tasks, heldout_utterances, real_time_factor, transcription_metrics
from maskzoo.core.fileio import atomic_open

STAGES = (("encoder (stage 0)", "audio_encoder", "apps/recipes/audio_fsdd_encoder.yaml"),
          ("text LM", "audio_lm", "apps/recipes/audio_fsdd_lm.yaml"),
          ("stage 1 (ASR)", "audio_stage1", "apps/recipes/audio_fsdd_stage1.yaml"),
          ("stage 2 (instructions)", "audio_stage2", "apps/recipes/audio_fsdd_stage2.yaml"))


def stage_rows(runs: Path) -> list[str]:
    rows = []
    for name, run, recipe in STAGES:
        f = runs / run / "metrics.jsonl"
        if not f.is_file():
            rows.append(f"| {name} | `{recipe}` | (no run found) | | |")
            continue
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        train = [x for x in lines if "loss" in x]
        evals = [x for x in lines if any(k.startswith("eval/") for k in x)]
        last_eval = ", ".join(f"{k[5:]} {v:.3f}" for k, v in evals[-1].items() if k.startswith("eval/")) if evals else ""
        rows.append(f"| {name} | `{recipe}` | {train[-1]['step'] if train else 0} | "
                    f"{train[-1]['elapsed_s'] / 60 if train else 0:.1f} min | {last_eval} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: the embedded one)")
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--utterances", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_audio_model(args.model)
    utts = heldout_utterances("apps/data/audio_fsdd", "lucas", args.utterances, model.window_samples)
    res = evaluate_tasks(model, utts)
    tm = transcription_metrics(res["transcribe"])
    seen_utts = heldout_utterances("apps/data/audio_fsdd", "george", args.utterances // 2, model.window_samples,
                                   seed=20_000)
    seen = evaluate_tasks(model, seen_utts)
    sm = transcription_metrics(seen["transcribe"])
    rtf = {b: real_time_factor(model, utts[:32], model.config.steps, b) for b in (1, 16)}
    single = single_recordings(model, Path("apps/data/audio_fsdd"), "lucas")
    n_params = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for n, p in model.named_parameters()
                  if n.split(".")[0] in ("semantic", "acoustic", "soft_prompts", "window"))
    fails = [(u.text, h) for u, h, r in zip(utts, res["transcribe"].hyps, res["transcribe"].refs) if h != r][:10]
    by_len: dict[int, list[bool]] = {}
    for u, h, r in zip(utts, res["transcribe"].hyps, res["transcribe"].refs):
        by_len.setdefault(len(u.digits), []).append(h == r)
    lines = [
        "# audio-fsdd-digits",
        "",
        "A DIFFA-style spoken-digit audio-language model (Zhou et al. 2025, arXiv 2507.18452): a small Whisper-shaped",
        "encoder, DIFFA's semantic adapter and acoustic Q-Former, and a frozen LLaDA-architecture diffusion LM, all",
        "trained in this repository (no pretrained weights exist offline). It transcribes 1-4 spoken digits and",
        "answers: how many digits are spoken, the first / last digit, is digit X spoken.",
        "",
        f"Parameters: {n_params:,} in all; {trained:,} in the adapters trained in stages 1-2. Encoder window "
        f"{model.window_samples / 16000:g} s (longer audio is transcribed window by window).",
        "",
        "## Design (DIFFA, scaled down)",
        "",
        "- Encoder: Whisper-shaped (conv1/conv2, sinusoidal positions, pre-LN blocks) at 80 mels, d 96, 3 layers,",
        "  a 4 s window (200 positions at 50 Hz); pre-trained on exact per-frame digit labels of composed",
        "  utterances (stage 0: `audio_fsdd_encoder.yaml`). CTC alone stayed at the all-blank solution on this",
        "  budget (see `encoder_pretrain.py`).",
        "- LM: LLaDA architecture (d 128, 3 layers), frozen. DIFFA freezes LLaDA-8B, which can already read; this",
        "  LM learns to read from `audio_fsdd_lm.yaml`: the task prompts with the audio slots holding a *text*",
        "  rendering of the digits (each digit word repeated over a run of 2-10 slots, as long as a spoken digit",
        "  lasts in 80 ms adapter slots; `<sil>` elsewhere), response-only LLaDA SFT.",
        "- Stage 1 (ASR): 8 learnable soft prompts (DIFFA: 20) + the semantic adapter (4x downsampling -> 50 audio",
        "  tokens), after the marker \"this is the audio:\"; DIFFA loss (CE / t over masked response tokens,",
        "  divided by the number of response tokens) plus a slot loss (ours, not DIFFA's; `train.py`): each",
        "  semantic token is pulled towards the LM's embedding of what its 80 ms hold (a digit word or `<sil>`).",
        "- LoRA (rank 8) on the LM's q/k/v is trained in stages 1 and 2 as Whisper-LLaDA does.",
        "- Stage 2 (instructions): acoustic Q-Former (8 queries on encoder layers 1 and 2; DIFFA: 64 on 4 layers)",
        "  + the semantic adapter and LoRA from stage 1; all five tasks.",
        "",
        "## Data",
        "",
        "Training: the real FSDD recordings of george, jackson, nicolas and yweweler, all 50 takes of each digit",
        "(`../shared/data/speech/fsdd`, CC BY-SA 4.0; 8 kHz). **Held out: lucas** (every number below; measured on",
        "the 160 lucas takes in `apps/data/audio_fsdd`, which no stage trained on).",
        "Training utterances are composed on the fly (1-4 recordings of one speaker, random pauses) and augmented:",
        "speed 0.85-1.15, gain -12..+6 dB, white noise at 10-40 dB SNR (p 0.7); in stage 0 also SpecAugment and a",
        "random smooth spectral colouring of up to 12 dB per utterance (`digits.channel_eq`: four speakers are four",
        "microphones).",
        "",
        "## Training (one command each; `apps/audio_train_embedded.sh` runs all four)",
        "",
        f"Hardware: 2-core CPU shared with 3-4 other training jobs, 1 torch thread ({platform.machine()}).",
        "",
        "| stage | recipe | steps | wall time | last evaluation (held-out speaker) |",
        "| --- | --- | --- | --- | --- |",
        *stage_rows(Path(args.runs)),
        "",
        f"## Measured on the held-out speaker ({args.utterances} clean composed utterances, greedy, "
        f"{model.config.steps} steps)",
        "",
        f"- transcription: **WER {tm['wer']:.3f}**, CER {tm['cer']:.3f}, utterances exactly right "
        f"{tm['utterance_accuracy']:.3f}",
        *[f"- {t}: accuracy {r.accuracy:.3f}" for t, r in res.items() if t != "transcribe"],
        "- exact transcripts by number of digits: "
        + ", ".join(f"{k}: {sum(v) / len(v):.2f} ({len(v)})" for k, v in sorted(by_len.items())),
        "",
        f"For comparison, a training speaker (george; new compositions of recordings seen in training, "
        f"{len(seen_utts)} utterances): WER {sm['wer']:.3f}, CER {sm['cer']:.3f}, utterances right "
        f"{sm['utterance_accuracy']:.3f}; "
        + ", ".join(f"{t} {r.accuracy:.3f}" for t, r in seen.items() if t != "transcribe") + ".",
        "",
        f"- single recordings, one file each as `maskzoo audio transcribe` reads them (the {single['n']} lucas "
        f"takes, 8 kHz): digit right {single['accuracy']:.3f}; per digit "
        + ", ".join(f"{d} {a:.2f}" for d, a in single["per_digit"].items()),
        "",
        f"- real-time factor (compute s / audio s, 1 thread): batch 1 {rtf[1]:.3f}, batch 16 {rtf[16]:.3f}",
        "",
        "## Failure cases (reference -> output, first 10)",
        "",
        *[f"- `{r}` -> `{h}`" for r, h in fails],
        "",
        "## Findings (measured during development)",
        "",
        "- What changed against the first card (held-out WER 0.907, count 0.30): (1) the encoder now sees all 50",
        "  takes per digit of the four speakers and a random spectral colouring per utterance; its per-frame digit",
        "  accuracy on lucas went from 0.21 to 0.72; (2) the LM reads digits as runs of slots, as long as they",
        "  are spoken, instead of one slot each; (3) a slot loss ties each semantic token to the LM's embedding",
        "  of what its 80 ms hold. Without (3) the adapters had collapsed to a few answers.",
        "- Speaker generalisation is still the main gap: compare the training speaker's WER above with lucas's.",
        "  Four training speakers are few; lucas's \"zero\" is almost never recognised (see the per-digit line).",
        "- Insertions: a long spoken digit can be read as two (`nine` -> `nine nine`): the LM splits a long run.",
        "- The frozen text LM answers 70 % of text-rendered transcriptions exactly (first / last 100 %, count 67 %;",
        "  `contains` 47 %, i.e. chance: the 3-layer LM never learned it); stage 2's LoRA lifts `contains` to ~0.6.",
        "- Exact transcripts fall with length (per-length line above): every digit must be right.",
        "- Wall times are from a 2-core machine running 3-4 other training jobs at once (one thread each).",
        "",
        "## Limits",
        "",
        "- Digits only, closed vocabulary (`maskzoo audio ask` refuses unknown words); one speaker held out of",
        "  five is a small test of speaker generalisation.",
        "- Questions are answered about one window; `transcribe` joins window transcripts, so a digit cut by a",
        "  window boundary can be lost or doubled.",
        "",
        "Regenerate: `python apps/audio_model_card.py` (this card was written by it).",
    ]
    out = Path(args.out) if args.out else Path(str(model_dir(args.model))) / "MODEL_CARD.md"
    with atomic_open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def single_recordings(model, data_dir: Path, speaker: str) -> dict:
    """Transcribe every recording of ``speaker`` listed in ``data_dir/manifest.csv`` as its own file."""
    import csv

    from maskzoo.audio.audio_io import read_audio
    from maskzoo.audio.digits import DIGIT_WORDS
    from maskzoo.audio.inference import transcribe

    with open(data_dir / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["speaker"] == speaker]
    hyps = transcribe(model, [read_audio(data_dir / "recordings" / r["file"]) for r in rows], batch_size=16)
    words = [DIGIT_WORDS[int(r["digit"])] for r in rows]
    right = [h == w for h, w in zip(hyps, words)]
    per_digit: dict[str, list[bool]] = {}
    for w, ok in zip(words, right):
        per_digit.setdefault(w, []).append(ok)
    return {"n": len(rows), "accuracy": sum(right) / max(len(rows), 1),
            "per_digit": {d: sum(v) / len(v) for d, v in per_digit.items()}}


def model_dir(path):
    from maskzoo.audio.zoo import WEIGHTS

    return Path(path) if path else WEIGHTS


if __name__ == "__main__":
    main()
