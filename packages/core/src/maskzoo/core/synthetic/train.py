"""Train the synthetic-task model: ``python -m maskzoo.core.synthetic.train --config apps/recipes/synthetic_tasks.yaml``.

A :class:`~maskzoo.core.transformer.DiffusionTransformer` trained with LLaDA's response-only SFT loss (the prompt
is never masked; each row's loss is divided by its answer length; Nie et al. 2025) on fresh examples of all five
tasks every step (:mod:`.tasks`). Evaluation: exact-match accuracy of greedy low-confidence decoding, one token per
step, on a fixed held-out set.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskzoo.core.checkpoint import save_model
from maskzoo.core.config import load_config
from maskzoo.core.losses import DiffusionLoss
from maskzoo.core.sampling import generate
from maskzoo.core.training import TrainConfig, Trainer
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

from .tasks import ANSWER_LEN, PROMPT_LEN, SyntheticTokenizer, accuracy, make_batch


@dataclass
class SyntheticArch:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4


@dataclass
class SyntheticRecipe:
    model: SyntheticArch = field(default_factory=SyntheticArch)
    batch_size: int = 64
    eval_examples: int = 250
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/synthetic_tasks"
    export: str | None = None


class TaskLoader:
    """Endless fresh batches ``{"input_ids", "maskable"}``; batch k is seeded by (seed, k) (exact resume)."""

    def __init__(self, tok: SyntheticTokenizer, batch_size: int, seed: int) -> None:
        self.tok, self.batch_size, self.seed, self.batches = tok, batch_size, seed, 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.batches)
        ids, maskable, _ = make_batch(self.tok, self.batch_size, g)
        self.batches += 1
        return {"input_ids": ids, "maskable": maskable}

    def state_dict(self) -> dict:
        return {"batches": self.batches, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state["batches"])


def build_model(tok: SyntheticTokenizer, arch: SyntheticArch) -> DiffusionTransformer:
    cfg = TransformerConfig(vocab_size=tok.vocab_size, d_model=arch.d_model, n_layers=arch.n_layers,
                            n_heads=arch.n_heads, max_seq_len=PROMPT_LEN + ANSWER_LEN, mask_token_id=tok.mask_id)
    return DiffusionTransformer(cfg)


def held_out(tok: SyntheticTokenizer, n: int):
    """The fixed evaluation set (seed 12345, never a training seed)."""
    ids, _, answers = make_batch(tok, n, torch.Generator().manual_seed(12345))
    return ids[:, :PROMPT_LEN], answers


def main() -> None:
    parser = argparse.ArgumentParser(description="train the synthetic-task model")
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    recipe = load_config(SyntheticRecipe, args.config, list(args.overrides))
    torch.set_num_threads(1)
    tok = SyntheticTokenizer()
    torch.manual_seed(recipe.train.seed)
    model = build_model(tok, recipe.model)
    prompts, answers = held_out(tok, recipe.eval_examples)

    def eval_fn(m) -> dict[str, float]:
        out = generate(m, prompts, gen_length=ANSWER_LEN, steps=ANSWER_LEN, block_length=ANSWER_LEN)
        return {"exact_match": accuracy(tok, out[:, PROMPT_LEN:], answers)}

    loss = DiffusionLoss.llada_sft(tok.mask_id)
    trainer = Trainer(model, loss, TaskLoader(tok, recipe.batch_size, recipe.train.seed), recipe.train,
                      eval_fn=eval_fn, run_dir=Path(recipe.run_dir), resume=True, run_config=recipe)
    summary = trainer.fit()
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "model"
    with trainer.eval_weights() as final:
        final_eval = eval_fn(final)
        save_model(final, out, extra={"tokenizer": "maskzoo.core.synthetic.SyntheticTokenizer",
                                      "train_summary": summary, "final_eval": final_eval})
    print("final", final_eval, "->", out)


if __name__ == "__main__":
    main()
