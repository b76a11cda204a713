"""Fast decoding: accuracy against speed on exact-answer tasks, the dual cache's speed-up, cache agreement.

    python bench/bench_fast_decoding.py [--model runs/synthetic_tasks/model] [--examples 200] [--threads 1]

All ratios are measured side by side in one run (same process, same machine load):

1. Synthetic tasks (``maskzoo.core.synthetic``; the model trained by apps/recipes/synthetic_tasks.yaml):
   exact-match accuracy, generated tokens/s and forward calls per generated token for plain low-confidence
   decoding (steps = gen_length), prefix / dual caches, thresholds 0.5-0.95, the factor rule, DUS and
   combinations, at batch 1 and 8. Speed-ups are against plain decoding at the same batch size.
2. The dual cache alone on a 6-layer d256 model (random weights: the speed does not depend on them),
   prompt 128 + gen 128, block 32, one token per step, at batch 1 and 4: tokens/s against no cache.
3. Token agreement of the approximate caches (and thresholds) with uncached greedy decoding on the embedded text
   model (text-char-shakespeare), 64 characters after prompts taken from the validation text.

Writes ``bench/results/fast_decoding.json`` and ``bench/results/fast_decoding.png`` (accuracy against tokens/s and
against forwards per token).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from maskzoo.core import load_model
from maskzoo.core.sampling import generate
from maskzoo.core.synthetic.tasks import ANSWER_LEN, PROMPT_LEN, SyntheticTokenizer, accuracy, make_batch
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

RESULTS = Path(__file__).parent / "results"

CONFIGS: dict[str, dict] = {
    "plain": {},
    "prefix": dict(cache="prefix"),
    "dual": dict(cache="dual"),
    "threshold 0.5": dict(threshold=0.5),
    "threshold 0.7": dict(threshold=0.7),
    "threshold 0.9": dict(threshold=0.9),
    "threshold 0.95": dict(threshold=0.95),
    "factor 1": dict(factor=1.0),
    "dus": dict(remasking="dus"),
    "dual + threshold 0.9": dict(cache="dual", threshold=0.9),
    "dual + threshold 0.7": dict(cache="dual", threshold=0.7),
    "prefix + factor 1": dict(cache="prefix", factor=1.0),
    "dual + dus": dict(cache="dual", remasking="dus"),
}


class Counter:
    def __init__(self, model):
        self.calls = 0
        model.register_forward_hook(self)

    def __call__(self, *_):
        self.calls += 1


def synthetic(model_dir: str, examples: int, rounds: int = 5) -> list[dict]:
    """Every configuration on the same examples; the examples are split into ``rounds`` chunks and each round runs
    every configuration on its chunk, so that changes of the machine's load hit all configurations alike."""
    tok = SyntheticTokenizer()
    model = load_model(model_dir).eval()
    counter = Counter(model)
    ids, _, answers = make_batch(tok, examples, torch.Generator().manual_seed(999))
    prompts = ids[:, :PROMPT_LEN]
    rows = []
    for batch in (1, 8):
        wall = dict.fromkeys(CONFIGS, 0.0)
        calls = dict.fromkeys(CONFIGS, 0)
        outs: dict[str, list] = {name: [] for name in CONFIGS}
        chunk = -(-examples // rounds // batch) * batch
        for extra in CONFIGS.values():  # warm-up
            generate(model, prompts[:batch], gen_length=ANSWER_LEN, steps=ANSWER_LEN, block_length=4, **extra)
        for lo in range(0, examples, chunk):
            for name, extra in CONFIGS.items():
                kw = dict(gen_length=ANSWER_LEN, steps=ANSWER_LEN, block_length=4, **extra)
                counter.calls = 0
                t0 = time.perf_counter()
                for i in range(lo, min(lo + chunk, examples), batch):
                    outs[name].append(generate(model, prompts[i : i + batch], **kw)[:, PROMPT_LEN:])
                wall[name] += time.perf_counter() - t0
                calls[name] += counter.calls
        base = None
        for name in CONFIGS:
            row = dict(config=name, batch=batch, accuracy=accuracy(tok, torch.cat(outs[name]), answers),
                       tokens_per_s=examples * ANSWER_LEN / wall[name],
                       forwards_per_token=calls[name] / (examples / batch) / ANSWER_LEN, wall_s=wall[name])
            base = base or row
            row["speedup"] = row["tokens_per_s"] / base["tokens_per_s"]
            row["accuracy_lost_points"] = 100 * (base["accuracy"] - row["accuracy"])
            rows.append(row)
            print(f"batch {batch:2d} {name:22s} acc {row['accuracy']:.3f} tok/s {row['tokens_per_s']:8.1f} "
                  f"fwd/tok {row['forwards_per_token']:.3f} speed-up {row['speedup']:.2f}x")
    return rows


def dual_cache_speed(repeats: int = 3) -> list[dict]:
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=1024, d_model=256, n_layers=6, n_heads=4, max_seq_len=256, mask_token_id=1023)
    model = DiffusionTransformer(cfg).eval()
    rows = []
    for batch in (1, 4):
        prompt = torch.randint(0, 1000, (batch, 128), generator=torch.Generator().manual_seed(1))
        times: dict[str, list[float]] = {"none": [], "dual": [], "prefix": []}
        for _ in range(repeats):  # alternate so that load changes hit all alike
            for cache in times:
                t0 = time.perf_counter()
                generate(model, prompt, gen_length=128, steps=128, block_length=32, cache=None if cache == "none"
                         else cache)
                times[cache].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in times.items()}
        row = dict(batch=batch, seconds=best, dual_speedup=best["none"] / best["dual"],
                   prefix_speedup=best["none"] / best["prefix"], tokens_per_s={k: batch * 128 / v for k, v in
                                                                               best.items()})
        rows.append(row)
        print(f"6-layer d256, prompt 128 + gen 128, block 32, batch {batch}: dual {row['dual_speedup']:.2f}x, "
              f"prefix {row['prefix_speedup']:.2f}x over no cache")
    return rows


def cache_agreement(prompts: int = 8) -> list[dict]:
    from maskzoo.core.text.data import read_text, split_text
    from maskzoo.core.text.model import load_text_model

    model, tok = load_text_model()
    _, valid = split_text(read_text(None), 0.9)
    ids = tok.encode(valid)
    starts = torch.arange(prompts) * 997
    batch = torch.stack([ids[s : s + 32] for s in starts.tolist()])  # [n, 32]
    kw = dict(gen_length=64, steps=64, block_length=16)
    exact = generate(model, batch, **kw)[:, 32:]
    rows = []
    for name, extra in [("prefix", dict(cache="prefix")), ("dual", dict(cache="dual")),
                        ("threshold 0.9", dict(threshold=0.9)), ("dual + threshold 0.9", dict(cache="dual",
                                                                                              threshold=0.9))]:
        out = generate(model, batch, **kw, **extra)[:, 32:]
        agree = float((out == exact).float().mean())
        rows.append(dict(config=name, token_agreement=agree))
        print(f"text model: {name:22s} agrees with uncached greedy on {agree:.3f} of tokens")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for batch, marker in ((1, "o"), (8, "s")):
        sub = [r for r in rows if r["batch"] == batch]
        for ax, key in zip(axes, ("tokens_per_s", "forwards_per_token"), strict=True):
            ax.scatter([r[key] for r in sub], [r["accuracy"] for r in sub], marker=marker, label=f"batch {batch}")
            for r in sub:
                ax.annotate(r["config"], (r[key], r["accuracy"]), fontsize=6)
    axes[0].set_xlabel("generated tokens / s")
    axes[0].set_xscale("log")
    axes[1].set_xlabel("forward calls per generated token")
    for ax in axes:
        ax.set_ylabel("exact-match accuracy")
        ax.legend()
    fig.suptitle("synthetic tasks: accuracy against speed (one CPU thread)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthetic-tasks")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["synthetic", "dual", "agreement"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = dict(threads=args.threads, machine=platform.machine(), examples=args.examples)
    if "synthetic" not in args.skip:
        result["synthetic"] = synthetic(args.model, args.examples)
        plot(result["synthetic"], RESULTS / "fast_decoding.png")
    if "dual" not in args.skip:
        result["dual_cache_speed"] = dual_cache_speed()
    if "agreement" not in args.skip:
        result["cache_agreement"] = cache_agreement()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fast_decoding.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
