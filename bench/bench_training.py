"""Training throughput: the masked-diffusion objective against the same model trained autoregressively.

Both runs use the shared Trainer's pieces (AdamW, the same model size as the embedded text model, the same
batches); the only difference is the loss (DiffusionLoss vs ARLoss, bidirectional vs causal attention).
Prints tokens/s side by side and their ratio; writes bench/results/training.json.

    python bench/bench_training.py [--steps 20] [--batch-size 32] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from maskzoo.core.losses import ARLoss, DiffusionLoss
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig


def tokens_per_second(causal: bool, steps: int, batch: torch.Tensor, warmup: int = 2) -> float:
    torch.manual_seed(0)
    vocab = 68
    cfg = TransformerConfig(vocab_size=vocab, d_model=128, n_layers=4, n_heads=4, max_seq_len=256,
                            mask_token_id=vocab - 1, causal=causal)
    model = DiffusionTransformer(cfg).train()
    loss_fn = ARLoss() if causal else DiffusionLoss(vocab - 1, schedule="linear")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        loss, _ = loss_fn(model, {"input_ids": batch})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch.numel() / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()
    batch = torch.randint(0, 65, (args.batch_size, args.seq_len))  # [B, L]
    # alternate the two objectives so that machine load affects both alike
    diff, ar = [], []
    for _ in range(2):
        diff.append(tokens_per_second(False, args.steps, batch))
        ar.append(tokens_per_second(True, args.steps, batch))
    d, a = max(diff), max(ar)
    print(f"{'objective':<16}{'tokens/s':>12}")
    print(f"{'diffusion':<16}{d:>12.0f}")
    print(f"{'autoregressive':<16}{a:>12.0f}")
    print(f"ratio diffusion/AR tokens/s: {d / a:.3f}")
    out = Path(__file__).parent / "results" / "training.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"diffusion_tokens_per_s": d, "ar_tokens_per_s": a, "ratio": d / a,
                               "batch_size": args.batch_size, "seq_len": args.seq_len, "steps": args.steps,
                               "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
