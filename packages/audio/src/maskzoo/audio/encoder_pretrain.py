"""Stage 0: pre-train a small Whisper-shaped encoder on composed digit utterances (CTC + frame labels).

DIFFA and Whisper-LLaDA start from Whisper encoders pre-trained on 680k hours; none can be downloaded here, so
the embedded models get an encoder from this recipe. Objective:

    h = WhisperEncoder(log_mel(x))      [B, N, d]     50 positions per second
    y = log_softmax(W h)                [B, N, 11]    blank/silence + 10 digit words
    L = lambda_f * mean_n CE(y_n, z_n)  z_n: the digit whose recording covers frame n, else blank/silence (0)
      + lambda_c * CTC(y, digits)       -log p(digits | x) / |digits|, batch mean      (Graves et al. 2006)

The composition knows where every recording lies, so the frame labels z are exact. Decoding is the same for
both heads: argmax per frame, merge repeats, drop blanks. The embedded recipe uses frame labels only
(lambda_c = 0): a CTC-only run stayed at the all-blank solution for 140 steps (loss 3.0, held-out WER 1.0),
and with CTC added (lambda_c = 1) its early gradients (loss ~200) swamped the frame term under clipping,
while the frame term alone fits a batch in ~20 steps.

on augmented utterances of the training speakers (:mod:`maskzoo.audio.digits`) with SpecAugment on the features.
Validation: greedy CTC decoding on clean utterances of the held-out speaker -> word error rate.
The export is the encoder's state dict with its config (:func:`save_encoder`), read by the stage 1/2 recipes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from maskzoo.audio.digits import (
    DIGIT_WORDS,
    Augment,
    DigitUtterances,
    Utterance,
    channel_eq,
    load_bank,
    spec_augment,
)
from maskzoo.audio.features import log_mel_spectrogram
from maskzoo.audio.metrics import wer
from maskzoo.audio.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, load_strict
from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir
from maskzoo.core.training import ResumableLoader, TrainConfig, Trainer

BLANK = 0  # CTC blank; digit d is label d + 1


class EncoderWithCTC(nn.Module):
    """A :class:`WhisperEncoder` read frame by frame by a linear CTC head over ``blank + digits``."""

    def __init__(self, encoder: WhisperEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, 1 + len(DIGIT_WORDS))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(features)).log_softmax(-1)  # [B, N, 11]


class FeatureCollator:
    """Utterances -> ``{"features" [B, M, F], "targets" [sum n], "target_lengths" [B]}`` (+ SpecAugment)."""

    def __init__(self, n_mels: int, n_samples: int, spec_augment: bool, seed: int = 0,
                 channel_eq_db: float = 0.0) -> None:
        self.n_mels, self.n_samples, self.spec_augment = n_mels, n_samples, spec_augment
        self.channel_eq_db = channel_eq_db
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, items: Sequence[Utterance]) -> dict[str, torch.Tensor]:
        wav = torch.stack([torch.nn.functional.pad(u.waveform, (0, self.n_samples - u.waveform.numel()))
                           for u in items])  # [B, S]
        mel = log_mel_spectrogram(wav, self.n_mels, self.n_samples)  # [B, M, F]
        mel = channel_eq(mel, self.generator, self.channel_eq_db)
        if self.spec_augment:
            mel = spec_augment(mel, self.generator)
        targets = torch.tensor([d + 1 for u in items for d in u.digits])  # [sum n]
        lengths = torch.tensor([len(u.digits) for u in items])  # [B]
        n_pos = mel.shape[-1] // 2  # encoder positions (320 samples each)
        frames = torch.zeros(len(items), n_pos, dtype=torch.long)  # [B, N]: 0 = silence
        for i, u in enumerate(items):
            for (a, b), d in zip(u.spans, u.digits):
                frames[i, a // 320:min(n_pos, -(-b // 320))] = d + 1
        return {"features": mel, "targets": targets, "target_lengths": lengths, "frame_labels": frames}


class EncoderLoss:
    """``frame_weight`` x frame cross-entropy + ``ctc_weight`` x CTC (module docstring)."""

    def __init__(self, frame_weight: float, ctc_weight: float) -> None:
        if frame_weight < 0 or ctc_weight < 0 or frame_weight + ctc_weight == 0:
            raise UserError("frame_weight and ctc_weight must be >= 0 and not both 0")
        self.frame_weight, self.ctc_weight = frame_weight, ctc_weight

    def __call__(self, model: EncoderWithCTC, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        logp = model(batch["features"])  # [B, N, 11]
        b, n, _ = logp.shape
        ctc = F.ctc_loss(logp.transpose(0, 1), batch["targets"], torch.full((b,), n, dtype=torch.long),
                         batch["target_lengths"], blank=BLANK, reduction="mean", zero_infinity=True)
        frame = F.nll_loss(logp.flatten(0, 1), batch["frame_labels"].flatten())
        loss = self.ctc_weight * ctc + self.frame_weight * frame
        return loss, {"ctc": ctc.item(), "frame_ce": frame.item(), "num_tokens": b}


def greedy_ctc(logp: torch.Tensor, min_run: int = 1) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks and runs shorter than ``min_run`` frames (a frame
    classifier flickers; 3 frames = 60 ms is far shorter than any spoken digit). ``[B, N, C]`` -> digit lists."""
    out = []
    for row in logp.argmax(-1).tolist():
        seq, prev, run = [], BLANK, 0
        for c in [*row, BLANK]:
            if c == prev:
                run += 1
                continue
            if prev != BLANK and run >= min_run:
                seq.append(prev - 1)
            prev, run = c, 1
        out.append(seq)
    return out


@torch.no_grad()
def heldout_metrics(model: EncoderWithCTC, data: DigitUtterances, collate: FeatureCollator, n: int,
                    min_run: int = 3) -> dict[str, float]:
    """One pass over the first ``n`` utterances of ``data``: ``heldout_wer``, the greedy word error rate
    (:func:`greedy_ctc`), and ``heldout_frame_acc``, the argmax accuracy over the encoder positions inside a
    digit's recording (silence excluded)."""
    was = model.training
    model.eval()
    hyps, refs = [], []
    right = total = 0
    for lo in range(0, n, 32):
        items = [data[i] for i in range(lo, min(n, lo + 32))]
        batch = collate(items)
        logp = model(batch["features"])  # [B, N, 11]
        for seq, u in zip(greedy_ctc(logp, min_run), items):
            hyps.append(" ".join(DIGIT_WORDS[d] for d in seq))
            refs.append(u.text)
        labels = batch["frame_labels"]  # [B, N]
        speech = labels != BLANK
        right += int((logp.argmax(-1) == labels)[speech].sum())
        total += int(speech.sum())
    model.train(was)
    return {"heldout_wer": wer(hyps, refs), "heldout_frame_acc": right / max(total, 1)}


def save_encoder(encoder: WhisperEncoder, path: str | Path, extra: dict | None = None) -> Path:
    """``path/encoder.json`` (config + ``extra``) and ``path/encoder.safetensors``, written atomically."""
    from safetensors.torch import save_file

    with atomic_dir(path) as tmp:
        meta = {"config": encoder.config.to_dict(), **(extra or {})}
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=1) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
        save_file(state, str(tmp / "encoder.safetensors"))
    return Path(path)


def load_encoder(path: str | Path) -> WhisperEncoder:
    """An encoder written by :func:`save_encoder` (strict)."""
    from safetensors.torch import load_file

    p = Path(path)
    if not (p / "encoder.json").is_file() or not (p / "encoder.safetensors").is_file():
        raise UserError(f"{p}: not an encoder directory (encoder.json + encoder.safetensors)")
    enc = WhisperEncoder(WhisperEncoderConfig.from_dict(json.loads((p / "encoder.json").read_text())["config"]))
    load_strict(enc, load_file(str(p / "encoder.safetensors")), str(p))
    return enc


# ------------------------------------------------------------------------------------------------ recipe
@dataclass
class EncoderPretrainRecipe:
    data_dir: str = "apps/data/audio_fsdd"
    train_speakers: list[str] = field(default_factory=lambda: ["george", "jackson", "nicolas", "yweweler"])
    heldout_speaker: str = "lucas"
    encoder: WhisperEncoderConfig = field(default_factory=lambda: WhisperEncoderConfig(
        n_mels=80, d_model=128, n_layers=4, n_heads=4, ffn_dim=512, max_source_positions=200))
    max_digits: int = 4
    batch_size: int = 32
    spec_augment: bool = True
    channel_eq_db: float = 0.0
    """peak of a random smooth spectral colouring per training example, dB (:func:`channel_eq`); 0 = off"""
    frame_weight: float = 1.0
    """weight of the frame-label cross-entropy"""
    ctc_weight: float = 0.0
    """weight of the CTC loss"""
    eval_utterances: int = 200
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str | None = None
    """an encoder directory (:func:`save_encoder`) to start from instead of random weights"""
    run_dir: str = "runs/audio_encoder"
    export: str | None = None
    """directory the encoder is written to at the end (default: run_dir/encoder)"""


def pretrain_encoder_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *,
                                 resume: bool = True) -> Path:
    """Run a stage-0 recipe; returns the exported encoder directory."""
    recipe = load_config(EncoderPretrainRecipe, config_path, list(overrides))
    if recipe.heldout_speaker in recipe.train_speakers:
        raise UserError(f"held-out speaker {recipe.heldout_speaker!r} is also a training speaker")
    if recipe.batch_size < 1:
        raise UserError("batch_size must be >= 1")
    if not 0 <= recipe.channel_eq_db <= 40:
        raise UserError(f"channel_eq_db must be in [0, 40] dB, got {recipe.channel_eq_db}")
    cfg = recipe.encoder
    torch.manual_seed(recipe.train.seed)
    bank = load_bank(str(Path(recipe.data_dir).resolve()))
    model = EncoderWithCTC(WhisperEncoder(cfg))
    if recipe.init_from:
        start = load_encoder(recipe.init_from)
        if start.config != cfg:
            raise UserError(f"init_from {recipe.init_from}: its encoder config {start.config} differs from {cfg}")
        model.encoder.load_state_dict(start.state_dict())
    data = DigitUtterances(bank, tuple(recipe.train_speakers), recipe.max_digits, cfg.n_samples,
                           seed=recipe.train.seed)
    held = DigitUtterances(bank, (recipe.heldout_speaker,), recipe.max_digits, cfg.n_samples, seed=10_000,
                           augment=Augment(speed=False, gain_db=(0.0, 0.0), noise_prob=0.0))
    collate = FeatureCollator(cfg.n_mels, cfg.n_samples, recipe.spec_augment, seed=recipe.train.seed,
                              channel_eq_db=recipe.channel_eq_db)
    clean = FeatureCollator(cfg.n_mels, cfg.n_samples, False)
    loader = ResumableLoader(data, recipe.batch_size, collate, seed=recipe.train.seed, shuffle=False)

    def eval_fn(m: EncoderWithCTC) -> dict[str, float]:
        return heldout_metrics(m, held, clean, recipe.eval_utterances)

    trainer = Trainer(model, EncoderLoss(recipe.frame_weight, recipe.ctc_weight), loader, recipe.train, eval_fn=eval_fn if recipe.eval_utterances else None,
                      run_dir=Path(recipe.run_dir), resume=resume, run_config=recipe)
    metrics = trainer.fit()
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "encoder"
    if trainer.is_main:
        with trainer.eval_weights() as final:
            save_encoder(final.encoder, out, {"recipe": "encoder_pretrain", "steps": trainer.step,
                                              "heldout_speaker": recipe.heldout_speaker,
                                              "metrics": {k: float(v) for k, v in metrics.items()}})
    return out
