"""A tiny training script for the Trainer tests, run as a subprocess (plain python or torchrun).

    python tests/core/_trainer_toy.py RUN_DIR [key=value ...]

Script options (``resume``, ``sleep``, ``dropout``, ``batch_size``, ``eval``) are taken out of the overrides; the
rest are TrainConfig overrides. ``eval=1`` adds an eval_fn that records which ranks evaluated (``evaluated_by_rank_R``
files in the run dir). The model is an embedding + linear next-token predictor on a fixed random token stream.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

from maskzoo.core.config import load_config
from maskzoo.core.training import RandomCropLoader, TrainConfig, Trainer

VOCAB, DIM, SEQ = 16, 8, 8


class Toy(nn.Module):
    """Embedding -> dropout -> linear; ``gradient_checkpointing`` exists so the toggle can be tested."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(DIM, VOCAB)
        self.gradient_checkpointing = False

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.emb(ids)))  # [B, L, V]


def make_loss(sleep: float = 0.0):
    def loss_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        if sleep:
            time.sleep(sleep)
        ids = batch["input_ids"]  # [B, L]
        logits = model(ids[:, :-1])  # [B, L-1, V]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        return loss, {"acc": (logits.argmax(-1) == ids[:, 1:]).float().mean().item()}

    return loss_fn


def tokens() -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    base = torch.randint(0, VOCAB, (64,), generator=g)
    return base.repeat(8)  # [512] a periodic stream: learnable


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    run_dir, rest = argv[0], argv[1:]
    script = {"resume": "0", "sleep": "0", "dropout": "0", "batch_size": "8", "eval": "0"}
    overrides = []
    for item in rest:
        key = item.split("=", 1)[0]
        if key in script:
            script[key] = item.split("=", 1)[1]
        else:
            overrides.append(item)
    cfg = load_config(TrainConfig, None, overrides)
    torch.manual_seed(0)
    model = Toy(float(script["dropout"]))
    data = RandomCropLoader(tokens(), SEQ, int(script["batch_size"]), seed=7)

    def eval_fn(m: nn.Module) -> dict:
        rank = int(os.environ.get("RANK", 0))
        with open(os.path.join(run_dir, f"evaluated_by_rank_{rank}"), "a") as f:
            f.write("x")
        ids = tokens()[: 4 * SEQ].view(4, SEQ)  # [4, SEQ]
        return {"loss": F.cross_entropy(m(ids[:, :-1]).reshape(-1, VOCAB), ids[:, 1:].reshape(-1)).item()}

    trainer = Trainer(
        model, make_loss(float(script["sleep"])), data, cfg, eval_fn if script["eval"] == "1" else None,
        run_dir=run_dir, resume=script["resume"] == "1",
    )
    trainer.fit()


def run_in_process(argv: list[str]) -> None:
    """``main(argv)`` inside the calling process (restores its torch thread count afterwards)."""
    threads = torch.get_num_threads()
    try:
        main(argv)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main(sys.argv[1:])
