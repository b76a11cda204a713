"""The frozen text LM of the embedded models: a small LLaDA-architecture diffusion LM that learns to answer the
instruction tasks from a *text* rendering of the audio.

DIFFA freezes LLaDA-8B, which already reads and answers questions; its adapters only have to present audio in
a form the LM can read. Our tiny LM gets that ability from this recipe. Each example is the prompt layout of
:mod:`maskzoo.audio.tasks` with the audio run replaced by text:

    <bos> this is the audio : [<sil> ... d_1 ... <sil> ... d_n ... <sil>] <sep> QUESTION <sep> ANSWER <eos>...
                              \\_ A_pre + K positions: each digit word repeated over a run of slots (as long as
                                 the spoken digit), the runs in order among the last K (where the semantic
                                 adapter's tokens go), <sil> everywhere else

trained with LLaDA's response-only SFT loss (Nie et al. 2025, eq. 5: only the answer is masked). The adapters
are then trained against this frozen LM (:mod:`maskzoo.audio.train`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskzoo.audio.tasks import TASKS, answer_ids, build_tokenizer, example
from maskzoo.audio.tokenizer import WordTokenizer
from maskzoo.core.checkpoint import save_model
from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.losses import DiffusionLoss
from maskzoo.core.sampling import generate
from maskzoo.core.training import ResumableLoader, TrainConfig, Trainer
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig


def text_audio_region(tok: WordTokenizer, digits: Sequence[int], n_semantic: int, n_prefix: int,
                      rng: random.Random, run_slots: tuple[int, int] = (1, 1)) -> list[int]:
    """``n_prefix`` <sil>, then ``n_semantic`` slots in which digit ``d_i`` fills a run of ``r_i ~ U{run_slots}``
    consecutive slots; the runs keep their order, at least one <sil> between two runs, the rest of the <sil>
    spread uniformly (stars and bars) before, between and after them.

    Runs, not single slots, because that is what the semantic adapter sees: it emits one vector per 80 ms
    (4 encoder positions) and a spoken digit lasts 0.2-0.8 s, i.e. 2-10 slots. An LM that reads runs lets the
    adapter map each slot to "this digit" or "silence" locally, as a frame classifier does."""
    lo, hi = run_slots
    lengths = [rng.randint(lo, hi) for _ in digits]
    while sum(lengths) + len(digits) - 1 > n_semantic:  # shorten the longest run until everything fits
        lengths[lengths.index(max(lengths))] -= 1
    n = len(digits)
    free = n_semantic - (sum(lengths) + n - 1)
    cuts = sorted(rng.sample(range(free + n), n))  # stars and bars: n bars among free + n places
    gaps = [cuts[0], *(b - a - 1 for a, b in zip(cuts, cuts[1:])), free + n - 1 - cuts[-1]]
    region = [tok.sil_id] * (n_prefix + gaps[0])
    for k, (d, r) in enumerate(zip(digits, lengths)):
        if k:
            region += [tok.sil_id] * (1 + gaps[k])
        region += tok.encode(str(d)) * r
    return region + [tok.sil_id] * gaps[n]


@dataclass
class TextTasks(torch.utils.data.Dataset):
    """Text-only task examples; item ``i`` is a pure function of ``(seed, i)``: ``(ids, n_prompt)``."""

    tok: WordTokenizer
    n_semantic: int
    max_prefix: int
    gen_length: int
    max_digits: int = 4
    tasks: tuple[str, ...] = TASKS
    seed: int = 0
    run_slots: tuple[int, int] = (1, 1)
    """each digit fills a run of this many slots, both ends included (:func:`text_audio_region`)"""
    size: int = 10_000_000

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        rng = random.Random(f"lm/{self.seed}/{i}")
        digits = [rng.randrange(10) for _ in range(rng.randint(1, self.max_digits))]
        question, answer = example(rng.choice(self.tasks), digits, rng)
        region = text_audio_region(self.tok, digits, self.n_semantic, rng.randint(0, self.max_prefix), rng,
                                   tuple(self.run_slots))
        prompt = [self.tok.bos_id, *self.tok.encode("this is the audio:"), *region, self.tok.sep_id,
                  *self.tok.encode(question), self.tok.sep_id]
        return prompt + answer_ids(self.tok, answer, self.gen_length), len(prompt)


class LeftPadCollator:
    """``(ids, n_prompt)`` items -> left-padded ``input_ids``, ``attention_mask``, ``maskable`` (the answer)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        n = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), n), self.pad_id, dtype=torch.long)  # [B, L]
        attention = torch.zeros(len(items), n, dtype=torch.long)  # [B, L]
        maskable = torch.zeros(len(items), n, dtype=torch.bool)  # [B, L]
        for i, (ids, n_prompt) in enumerate(items):
            off = n - len(ids)
            input_ids[i, off:] = torch.tensor(ids)
            attention[i, off:] = 1
            maskable[i, off + n_prompt:] = True
        return {"input_ids": input_ids, "attention_mask": attention, "maskable": maskable}


@torch.no_grad()
def text_answer_accuracy(lm: DiffusionTransformer, data: TextTasks, n: int, steps: int) -> float:
    """Exact-match accuracy of greedy answers (low-confidence remasking) on ``n`` examples."""
    was = lm.training
    lm.eval()
    tok, right = data.tok, 0
    for lo in range(0, n, 64):
        items = [data[i] for i in range(lo, min(n, lo + 64))]
        prompts = [ids[:k] for ids, k in items]
        out = generate(lm, prompts, gen_length=data.gen_length, steps=steps, block_length=data.gen_length,
                       pad_id=tok.pad_id)
        for row, (ids, k) in zip(out, items):
            right += tok.decode(row[-data.gen_length:].tolist()) == tok.decode(ids[k:])
    lm.train(was)
    return right / n


@dataclass
class LMRecipe:
    lm: dict = field(default_factory=lambda: dict(d_model=128, n_layers=4, n_heads=4, max_seq_len=128))
    """TransformerConfig fields except vocab_size and mask_token_id (set from the tokenizer)"""
    n_semantic: int = 50
    """audio slots the semantic adapter fills (encoder positions / 4)"""
    max_prefix: int = 16
    """up to this many <sil> slots before them (soft prompts / acoustic queries)"""
    gen_length: int = 8
    max_digits: int = 4
    run_slots: list[int] = field(default_factory=lambda: [1, 1])
    """[min, max] slots a digit word fills in the text rendering of the audio (:func:`text_audio_region`)"""
    batch_size: int = 64
    eval_examples: int = 256
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/audio_lm"
    export: str | None = None
    """the LM directory written at the end (default: run_dir/lm)"""


def pretrain_lm_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *,
                            resume: bool = True) -> Path:
    """Run the text-LM recipe; returns the exported maskzoo model directory."""
    recipe = load_config(LMRecipe, config_path, list(overrides))
    if recipe.batch_size < 1 or recipe.n_semantic < recipe.max_digits:
        raise UserError("batch_size must be >= 1 and n_semantic >= max_digits")
    if len(recipe.run_slots) != 2 or not 1 <= recipe.run_slots[0] <= recipe.run_slots[1]:
        raise UserError(f"run_slots must be [min, max] with 1 <= min <= max, got {recipe.run_slots}")
    if recipe.max_digits * (recipe.run_slots[0] + 1) - 1 > recipe.n_semantic:
        raise UserError(f"{recipe.max_digits} runs of {recipe.run_slots[0]} slots do not fit in n_semantic "
                        f"= {recipe.n_semantic}")
    runs = (int(recipe.run_slots[0]), int(recipe.run_slots[1]))
    tok = build_tokenizer()
    cfg = TransformerConfig.from_dict({**recipe.lm, "vocab_size": len(tok), "mask_token_id": tok.mask_id})
    torch.manual_seed(recipe.train.seed)
    lm = DiffusionTransformer(cfg)
    data = TextTasks(tok, recipe.n_semantic, recipe.max_prefix, recipe.gen_length, recipe.max_digits,
                     seed=recipe.train.seed, run_slots=runs)
    held = TextTasks(tok, recipe.n_semantic, recipe.max_prefix, recipe.gen_length, recipe.max_digits, seed=99_999,
                     run_slots=runs)
    loader = ResumableLoader(data, recipe.batch_size, LeftPadCollator(tok.pad_id), seed=recipe.train.seed,
                             shuffle=False)

    def eval_fn(m: DiffusionTransformer) -> dict[str, float]:
        return {"answer_acc": text_answer_accuracy(m, held, recipe.eval_examples, recipe.gen_length)}

    trainer = Trainer(lm, DiffusionLoss.llada_sft(tok.mask_id), loader, recipe.train,
                      eval_fn=eval_fn if recipe.eval_examples else None, run_dir=Path(recipe.run_dir),
                      resume=resume, run_config=recipe)
    metrics = trainer.fit()
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "lm"
    if trainer.is_main:
        with trainer.eval_weights() as final:
            save_model(final, out, extra={"tokenizer": tok.to_dict(), "recipe": "audio lm_pretrain",
                                          "steps": trainer.step,
                                          "metrics": {k: float(v) for k, v in metrics.items()}})
    return out
