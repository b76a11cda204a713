"""Captioning speed and quality: captions/s against batch size and against sampler steps (held-out scenes).

    python bench/bench_vision.py [--checkpoint DIR] [--scenes 200] [--batch-sizes 1 8 32 64]
                                 [--steps 1 2 3 4 6 12] [--threads 1] [--no-plot]

For each setting the embedded captioner (or ``--checkpoint``) captions the same held-out compositional scenes
(unseen colour-shape pairs) and reports captions per second (wall clock, model + sampler, images already in
memory), exact match and token accuracy. Writes ``bench/results/vision.json`` and, with matplotlib installed,
the speed-quality plot ``bench/results/vision_speed_quality.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from maskzoo.core.fileio import atomic_open
from maskzoo.vision import Captioner
from maskzoo.vision.evaluate import caption_metrics, scene_set

RESULTS = Path(__file__).parent / "results"


def run(captioner: Captioner, images: list, refs: list[str], *, batch_size: int, steps: int, gen_length: int,
        ) -> dict[str, float]:
    """One setting: time a full pass over the images (after one warm-up batch) and score it."""
    captioner.caption(images[:batch_size], batch_size=batch_size, steps=steps, gen_length=gen_length)
    t0 = time.perf_counter()
    preds = captioner.caption(images, batch_size=batch_size, steps=steps, gen_length=gen_length,
                              generator=torch.Generator().manual_seed(0))
    dt = time.perf_counter() - t0
    return {"batch_size": batch_size, "steps": steps, "captions_per_s": len(images) / dt, "seconds": dt,
            **caption_metrics(preds, refs)}


def plot(rows_steps: list[dict], rows_batch: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot([r["captions_per_s"] for r in rows_steps], [r["exact_match"] for r in rows_steps], "o-", label="exact")
    a.plot([r["captions_per_s"] for r in rows_steps], [r["token_accuracy"] for r in rows_steps], "s--",
           label="token acc.")
    for r in rows_steps:
        a.annotate(f"{r['steps']} steps", (r["captions_per_s"], r["exact_match"]), fontsize=8)
    a.set_xlabel("captions / s")
    a.set_ylabel("held-out quality")
    a.set_title("sampler steps (speed vs quality)")
    a.legend()
    b.plot([r["batch_size"] for r in rows_batch], [r["captions_per_s"] for r in rows_batch], "o-")
    b.set_xscale("log", base=2)
    b.set_xlabel("batch size")
    b.set_ylabel("captions / s")
    b.set_title("batch size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 6, 12])
    p.add_argument("--gen-length", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cap = Captioner.from_pretrained(args.checkpoint)
    images, refs = scene_set("heldout", args.scenes, seed=1, image_size=cap.model.tower.image_size[0])
    default_steps = cap.generation()["steps"]
    rows_batch = [run(cap, images, refs, batch_size=b, steps=default_steps, gen_length=args.gen_length)
                  for b in args.batch_sizes]
    rows_steps = [run(cap, images, refs, batch_size=max(args.batch_sizes), steps=s, gen_length=args.gen_length)
                  for s in args.steps if args.gen_length % s == 0]
    print(f"{'batch':>6} {'steps':>6} {'capt/s':>8} {'exact':>6} {'tok acc':>8}")
    for r in rows_batch + rows_steps:
        print(f"{r['batch_size']:>6} {r['steps']:>6} {r['captions_per_s']:>8.1f} {r['exact_match']:>6.3f} "
              f"{r['token_accuracy']:>8.3f}")
    out = {"device": "cpu", "threads": args.threads, "platform": platform.platform(),
           "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
           "checkpoint": args.checkpoint or "embedded default", "scenes": args.scenes, "split": "heldout",
           "gen_length": args.gen_length, "by_batch_size": rows_batch, "by_steps": rows_steps}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_open(RESULTS / "vision.json", "w") as f:
        json.dump(out, f, indent=2)
    if not args.no_plot:
        png = plot(rows_steps, rows_batch, RESULTS / "vision_speed_quality.png")
        if png:
            print(f"plot: {png}")
    print(f"results: {RESULTS / 'vision.json'}")


if __name__ == "__main__":
    main()
