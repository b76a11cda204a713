"""Adapter training (DIFFA stages 1 and 2) with the core Trainer; the encoder and the LM stay frozen.

Stage 1 (ASR): soft prompts + semantic adapter, task "transcribe" only.
Stage 2 (instructions): acoustic Q-Former + semantic adapter (initialised from stage 1), every task.

Loss (DIFFA, Zhou et al. 2025, sec. 3.3; their ``dLLMTrainer.compute_loss``): with t ~ U(0, 1) per example
(floored as LLaDA does), each response token masked with probability t, prompt and audio never masked,

    L = sum_{b, i in response, masked} CE(logits_bi, x_bi) / t_b   /   (number of response tokens in the batch)

which is the core :class:`~maskzoo.core.losses.DiffusionLoss` with the linear schedule (weight
-alpha'(t) / (1 - alpha(t)) = 1/t), uniform times and the ``maskable_tokens`` normaliser (:func:`diffa_loss`).

Optional slot loss (``slot_weight`` > 0; ours, not DIFFA's): the semantic adapter's output ``S [B, K, D]`` is
pulled towards the frozen LM's embedding of what each 80 ms slot holds (the digit word whose recording covers
the slot's centre, else ``<sil>``; the composition knows every span exactly), i.e. the text rendering the LM was
trained to read (:func:`maskzoo.audio.lm_pretrain.text_audio_region`):

    L_slot = mean_{b, k} ||S_bk - E[y_bk]||^2 / mean_{b, k} ||E[y_bk]||^2

DIFFA's LLaDA-8B can read whatever its adapters learn to emit; a 3-layer LM trained in minutes is a narrow
reader, and on the diffusion loss alone the adapters collapsed to a few answers (the first model card).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskzoo.audio.digits import Augment, DigitUtterances, load_bank
from maskzoo.audio.encoder_pretrain import load_encoder
from maskzoo.audio.lm_pretrain import LeftPadCollator
from maskzoo.audio.model import AudioLanguageModel, AudioModelConfig
from maskzoo.audio.tasks import TASKS, answer_ids, example, prompt_ids
from maskzoo.audio.tokenizer import WordTokenizer
from maskzoo.core.checkpoint import load_model, read_config, save_model
from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.losses import DiffusionLoss
from maskzoo.core.training import ResumableLoader, TrainConfig, Trainer

LORA_TARGETS = ("q_proj.weight", "k_proj.weight", "v_proj.weight")


def diffa_loss(mask_id: int) -> DiffusionLoss:
    """DIFFA's objective as a configuration of the core loss (module docstring)."""
    return DiffusionLoss(mask_id, schedule="linear", time_sampler="uniform", normalization="maskable_tokens",
                         t_min=1e-3)


class AudioDiffusionLoss:
    """``loss_fn(model, batch)`` for the Trainer: audio embeddings once per batch, then :func:`diffa_loss`
    on the token sequence with those embeddings spliced into every forward, plus ``slot_weight`` x the slot
    loss (module docstring) on the semantic adapter's tokens (``batch["slot_labels"]``)."""

    def __init__(self, mask_id: int, slot_weight: float = 0.0) -> None:
        self.inner = diffa_loss(mask_id)
        self.slot_weight = slot_weight

    def __call__(self, model: AudioLanguageModel, batch: dict[str, torch.Tensor]):
        audio = model.encode_audio(batch["waveforms"])  # [B, A, D]
        text = {k: batch[k] for k in ("input_ids", "attention_mask", "maskable")}
        loss, metrics = self.inner(model.denoiser(audio), text)
        if self.slot_weight > 0:
            labels = batch["slot_labels"]  # [B, K] token ids
            sem = audio[:, model.semantic_slice()]  # [B, K, D]
            with torch.no_grad():
                target = model.lm.embed_tokens(labels)  # [B, K, D]
            slot = (sem - target).pow(2).sum(-1).mean() / target.pow(2).sum(-1).mean()
            loss = loss + self.slot_weight * slot
            metrics = {**metrics, "slot_mse": slot.item(), "loss": loss.item()}
        return loss, metrics


def slot_labels(spans: Sequence[tuple[int, int]], digits: Sequence[int], word_ids: Sequence[int], sil_id: int,
                n_slots: int, slot_samples: int) -> list[int]:
    """Token id per semantic slot: ``word_ids[d]`` where digit ``d``'s span covers the slot's centre sample,
    else ``sil_id``."""
    out = [sil_id] * n_slots
    for k in range(n_slots):
        centre = k * slot_samples + slot_samples // 2
        for (a, b), d in zip(spans, digits):
            if a <= centre < b:
                out[k] = word_ids[d]
    return out


@dataclass
class AudioTasks(torch.utils.data.Dataset):
    """``(waveform, ids, n_prompt)`` items: an utterance, a task prompt with ``n_audio`` placeholders, its answer."""

    utterances: DigitUtterances
    tok: WordTokenizer
    n_audio: int
    gen_length: int
    tasks: tuple[str, ...]
    seed: int = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i: int):
        u = self.utterances[i]
        rng = random.Random(f"task/{self.seed}/{i}")
        question, answer = example(rng.choice(self.tasks), u.digits, rng)
        prompt = prompt_ids(self.tok, question, self.n_audio)
        return u.waveform, prompt + answer_ids(self.tok, answer, self.gen_length), len(prompt), answer, u


class AudioCollator:
    """Items of :class:`AudioTasks` -> the text batch, ``waveforms [B, S]`` and, with ``n_slots``,
    ``slot_labels [B, n_slots]`` (:func:`slot_labels`, one slot per ``slot_samples`` samples)."""

    def __init__(self, pad_id: int, n_samples: int, tok: WordTokenizer | None = None, n_slots: int = 0,
                 slot_samples: int = 1280) -> None:
        self.text = LeftPadCollator(pad_id)
        self.n_samples, self.tok, self.n_slots, self.slot_samples = n_samples, tok, n_slots, slot_samples
        self.digit_ids = [tok.encode(str(d))[0] for d in range(10)] if tok is not None else []

    def __call__(self, items):
        batch = self.text([(it[1], it[2]) for it in items])
        batch["waveforms"] = torch.stack(
            [torch.nn.functional.pad(it[0], (0, self.n_samples - it[0].numel())) for it in items])  # [B, S]
        if self.n_slots and self.tok is not None:
            batch["slot_labels"] = torch.tensor(
                [slot_labels(it[4].spans, it[4].digits, self.digit_ids, self.tok.sil_id, self.n_slots,
                             self.slot_samples)
                 for it in items])  # [B, K]
        return batch


@dataclass
class AcousticSpec:
    """:class:`~maskzoo.audio.adapters.AcousticQFormer` options."""

    taps: list[int] = field(default_factory=lambda: [1, 2])
    n_queries: int = 64
    n_heads: int = 4
    n_layers: int = 2


@dataclass
class WindowSpec:
    """:class:`~maskzoo.audio.adapters.WindowQFormer` options (Whisper-LLaDA)."""

    window: int = 17
    n_queries: int = 4
    n_heads: int = 4
    n_layers: int = 2


@dataclass
class LoraSpec:
    rank: int = 8
    alpha: float = 16.0


def _as_dict(spec) -> dict | None:
    from dataclasses import asdict

    return None if spec is None else asdict(spec)


@dataclass
class AdapterRecipe:
    data_dir: str = "apps/data/audio_fsdd"
    train_speakers: list[str] = field(default_factory=lambda: ["george", "jackson", "nicolas", "yweweler"])
    heldout_speaker: str = "lucas"
    encoder_dir: str = "runs/audio_encoder/encoder"
    lm_dir: str = "runs/audio_lm/lm"
    init_from: str | None = None
    """an audio model of an earlier stage whose ``init_parts`` weights start this one"""
    init_parts: list[str] = field(default_factory=lambda: ["semantic"])
    n_soft_prompts: int = 0
    semantic: bool = True
    acoustic: AcousticSpec | None = None
    window: WindowSpec | None = None
    lora: LoraSpec | None = None
    trainable: list[str] = field(default_factory=lambda: ["semantic"])
    tasks: list[str] = field(default_factory=lambda: ["transcribe"])
    max_digits: int = 4
    gen_length: int = 8
    steps: int = 8
    batch_size: int = 16
    eval_utterances: int = 64
    slot_weight: float = 0.0
    """weight of the slot loss on the semantic adapter (module docstring); 0 = DIFFA's loss alone"""
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/audio_stage"
    export: str | None = None
    """the audio model directory written at the end (default: run_dir/model)"""


def build_model(recipe: AdapterRecipe) -> AudioLanguageModel:
    """Encoder (stage 0) + frozen LM + fresh adapters; ``init_parts`` copied from ``init_from``."""
    encoder = load_encoder(recipe.encoder_dir)
    lm = load_model(recipe.lm_dir)
    extra = read_config(recipe.lm_dir).get("extra", {})
    if "tokenizer" not in extra:
        raise UserError(f"{recipe.lm_dir}: the LM checkpoint has no tokenizer (train it with pretrain-lm)")
    cfg = AudioModelConfig(lm=lm.config.to_dict(), encoder={"family": "whisper", **encoder.config.to_dict()},
                           n_soft_prompts=recipe.n_soft_prompts, acoustic=_as_dict(recipe.acoustic),
                           semantic=recipe.semantic, window=_as_dict(recipe.window), lora=_as_dict(recipe.lora),
                           tokenizer=extra["tokenizer"], gen_length=recipe.gen_length, steps=recipe.steps)
    model = AudioLanguageModel(cfg)
    model.encoder.load_state_dict(encoder.state_dict())
    state = lm.state_dict()
    if recipe.lora:  # LoRA wraps q/k/v: the frozen weights live under ``<proj>.base``
        state = {(k[: -len(".weight")] + ".base.weight" if k.endswith(LORA_TARGETS) else k): v
                 for k, v in state.items()}
    missing, unexpected = model.lm.load_state_dict(state, strict=False)
    if unexpected or any("lora_" not in k for k in missing):
        raise UserError(f"{recipe.lm_dir}: LM weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.init_output_scale()
    if recipe.init_from:
        prev = load_model(recipe.init_from)
        for part in recipe.init_parts:
            if part == "lora":
                lora = {k: v for k, v in prev.lm.state_dict().items() if "lora_" in k}
                if not lora:
                    raise UserError(f"init_parts: {recipe.init_from} has no LoRA weights")
                model.lm.load_state_dict(lora, strict=False)
                continue
            src, dst = getattr(prev, part, None), getattr(model, part, None)
            if src is None or dst is None:
                raise UserError(f"init_parts: {part!r} is missing in {recipe.init_from} or in this model")
            dst.load_state_dict(src.state_dict())
    model.set_trainable(recipe.trainable)
    return model


@torch.no_grad()
def evaluate_heldout(model: AudioLanguageModel, data: AudioTasks, n: int, batch_size: int = 32) -> dict[str, float]:
    """Held-out speaker: per-task exact-match accuracy and the transcription WER, on ``n`` utterances per task."""
    from maskzoo.audio.inference import answer_windows
    from maskzoo.audio.metrics import wer
    from maskzoo.audio.tasks import TRANSCRIBE

    was = model.training
    model.eval()
    out: dict[str, float] = {}
    for task in data.tasks:
        rng = random.Random(f"eval/{task}")
        utts = [data.utterances[i] for i in range(n)]
        qa = [example(task, u.digits, rng) for u in utts]
        hyps = answer_windows(model, [u.waveform for u in utts], [q for q, _ in qa], batch_size=batch_size)
        out[f"{task}_acc"] = sum(h == a for h, (_, a) in zip(hyps, qa)) / n
        if qa[0][0] == TRANSCRIBE:
            out["wer"] = wer(hyps, [a for _, a in qa])
    model.train(was)
    return out


def train_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *,
                      resume: bool = True) -> Path:
    """Run a stage-1/2 recipe; returns the exported audio model directory."""
    recipe = load_config(AdapterRecipe, config_path, list(overrides))
    unknown = sorted(set(recipe.tasks) - set(TASKS))
    if unknown or not recipe.tasks:
        raise UserError(f"unknown task(s) {unknown or '[]'}; choose from {', '.join(TASKS)}")
    if recipe.heldout_speaker in recipe.train_speakers:
        raise UserError(f"held-out speaker {recipe.heldout_speaker!r} is also a training speaker")
    if recipe.batch_size < 1:
        raise UserError("batch_size must be >= 1")
    if not 0 <= recipe.slot_weight < float("inf"):
        raise UserError(f"slot_weight must be a finite number >= 0, got {recipe.slot_weight}")
    if recipe.slot_weight > 0 and not recipe.semantic:
        raise UserError("slot_weight > 0 needs the semantic adapter (semantic: true)")
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe)
    tok = model.tokenizer
    bank = load_bank(str(Path(recipe.data_dir).resolve()))
    n_samples = model.window_samples
    train_utts = DigitUtterances(bank, tuple(recipe.train_speakers), recipe.max_digits, n_samples,
                                 seed=recipe.train.seed)
    held_utts = DigitUtterances(bank, (recipe.heldout_speaker,), recipe.max_digits, n_samples, seed=10_000,
                                augment=Augment(speed=False, gain_db=(0.0, 0.0), noise_prob=0.0))
    tasks = tuple(recipe.tasks)
    data = AudioTasks(train_utts, tok, model.num_audio_tokens, recipe.gen_length, tasks, recipe.train.seed)
    held = AudioTasks(held_utts, tok, model.num_audio_tokens, recipe.gen_length, tasks)
    n_slots = 0
    if recipe.slot_weight > 0:
        sem = model.semantic_slice()
        n_slots = sem.stop - sem.start
    # one slot = `downsample` encoder positions of n_samples / positions samples each
    slot_samples = n_samples // model.encoder.num_positions * (model.semantic.downsample if model.semantic else 1)
    collate = AudioCollator(tok.pad_id, n_samples, tok, n_slots, slot_samples)
    loader = ResumableLoader(data, recipe.batch_size, collate, seed=recipe.train.seed, shuffle=False)

    def eval_fn(m: AudioLanguageModel) -> dict[str, float]:
        return evaluate_heldout(m, held, recipe.eval_utterances)

    trainer = Trainer(model, AudioDiffusionLoss(tok.mask_id, recipe.slot_weight), loader, recipe.train,
                      eval_fn=eval_fn if recipe.eval_utterances else None, run_dir=Path(recipe.run_dir),
                      resume=resume, run_config=recipe)
    metrics = trainer.fit()
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "model"
    if trainer.is_main:
        with trainer.eval_weights() as final:
            save_model(final, out, extra={"recipe": str(config_path), "steps": trainer.step,
                                          "heldout_speaker": recipe.heldout_speaker,
                                          "metrics": {k: float(v) for k, v in metrics.items()}})
    return out
