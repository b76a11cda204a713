"""Scene-text recognition: images/s and accuracy of every MDiff4STR inference mode against the autoregressive
baseline of the same size trained the same way, side by side in one run, on the held-out real IIIT5K crops.

    python bench/bench_str.py [--mdiff NAME|DIR] [--ar NAME|DIR] [--crops 300] [--synthetic 300]
                              [--batch-size 64] [--steps 1 2 3 4 6] [--rounds 3] [--threads 1] [--no-plot]
                              [--results bench/results]

Each configuration reads the same crops (already decoded and resized in memory: model + decoding only).
Accuracy is also measured on ``--synthetic`` held-out synthetic crops (renderer seed 999, never a training
image; words from the same corpus as training), an easier in-distribution set.
Timing: ``--rounds`` interleaved passes over all configurations after a warm-up batch; the fastest pass of
each is reported (the machine is shared, so the minimum is the least disturbed measurement), and speed
ratios are taken against the autoregressive baseline measured in the same run. Writes ``str.json`` and
``str_accuracy_vs_steps.png`` to ``--results`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from maskzoo.core.fileio import atomic_open
from maskzoo.vision.str.inference import read_text, to_batch
from maskzoo.vision.str.metrics import str_metrics
from maskzoo.vision.str.realdata import split_iiit5k
from maskzoo.vision.str.zoo import BASELINE_MODEL, DEFAULT_MODEL, load_str_model

RESULTS = Path(__file__).parent / "results"


def configurations(steps: list[int]) -> list[tuple[str, str, dict]]:
    """(label, which model, read_text kwargs)."""
    rows = [("AR baseline", "ar", {"mode": "autoregressive"}),
            ("parallel (1 step)", "mdiff", {"mode": "parallel"})]
    rows += [(f"low_confidence {k} steps", "mdiff", {"mode": "low_confidence", "steps": k}) for k in steps if k > 1]
    rows += [("semi_autoregressive (block 4)", "mdiff", {"mode": "semi_autoregressive", "block_length": 4}),
             ("cloze (1 round)", "mdiff", {"mode": "cloze", "steps": 1}),
             ("autoregressive (MDM order)", "mdiff", {"mode": "autoregressive"})]
    return rows


def plot(rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    lc = [r for r in rows if r["mode"] in ("parallel", "low_confidence")]
    a.plot([r.get("steps") or 1 for r in lc], [100 * r["word_acc_36"] for r in lc], "o-", label="MDiff4STR low-confidence")
    ar = next(r for r in rows if r["model"] == "ar")
    a.axhline(100 * ar["word_acc_36"], color="k", ls="--", label="AR baseline")
    a.set_xlabel("decoding steps")
    a.set_ylabel("word accuracy, 36 chars (%)")
    a.set_title("accuracy vs steps (held-out IIIT5K crops)")
    a.legend()
    # a legend, not annotations: several modes sit at the same accuracy and their labels would overlap
    for r in rows:
        b.plot(r["images_per_s"], 100 * r["word_acc_36"], "ks" if r["model"] == "ar" else "o", label=r["label"])
    b.legend(fontsize=7, loc="lower left")
    b.set_xlabel("images / s (1 thread)")
    b.set_ylabel("word accuracy, 36 chars (%)")
    b.set_title("speed vs accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mdiff", default=DEFAULT_MODEL)
    ap.add_argument("--ar", default=BASELINE_MODEL)
    ap.add_argument("--crops", type=int, default=300)
    ap.add_argument("--synthetic", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder for str.json and the plot")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {"mdiff": load_str_model(args.mdiff), "ar": load_str_model(args.ar)}
    _, val = split_iiit5k()
    n = min(args.crops, len(val))
    from PIL import Image

    batch = to_batch(models["mdiff"], [Image.fromarray(a) for a in val.images[:n]])  # [n, 1, 32, 128]
    labels = val.labels[:n]
    configs = configurations(args.steps)
    results: dict[str, dict] = {}
    from maskzoo.vision.str.render import SyntheticWords

    synth = SyntheticWords(seed=999)
    pairs = [synth[i] for i in range(args.synthetic)]
    a = models["mdiff"].alphabet
    synth_batch = to_batch(models["mdiff"], [im for im, _ in pairs]) if pairs else None
    synth_labels = [a.normalize(t) for _, t in pairs]
    for label, which, kw in configs:  # accuracy (deterministic) and warm-up
        readings = read_text(models[which], batch, batch_size=args.batch_size, **kw)
        preds = [r.text for r in readings]
        wrong = [{"label": t, "read": p, "name": nm} for p, t, nm in zip(preds, labels, val.names)
                 if p.lower() != t.lower()]
        results[label] = {"label": label, "model": which, **kw, **str_metrics(preds, labels),
                          "failures": wrong[:20], "seconds": []}
        if synth_batch is not None:
            sp = [r.text for r in read_text(models[which], synth_batch, batch_size=args.batch_size, **kw)]
            results[label]["synthetic"] = str_metrics(sp, synth_labels)
    for _ in range(args.rounds):  # interleaved timing rounds
        for label, which, kw in configs:
            t0 = time.perf_counter()
            read_text(models[which], batch, batch_size=args.batch_size, **kw)
            results[label]["seconds"].append(time.perf_counter() - t0)
    ar_ips = n / min(results["AR baseline"]["seconds"])
    rows = []
    for r in results.values():
        r["images_per_s"] = n / min(r["seconds"])
        r["speed_vs_ar"] = r["images_per_s"] / ar_ips
        rows.append(r)
    print(f"{n} held-out IIIT5K crops, batch {args.batch_size}, {args.threads} thread(s), best of {args.rounds}")
    print(f"{'configuration':32s} {'acc36':>6s} {'acc94':>6s} {'1-NED':>6s} {'img/s':>7s} {'vs AR':>6s}"
          f" | synthetic {'acc36':>6s} {'1-NED':>6s}")
    for r in rows:
        sy = r.get("synthetic", {"word_acc_36": float("nan"), "one_minus_ned": float("nan")})
        print(f"{r['label']:32s} {100 * r['word_acc_36']:6.1f} {100 * r['word_acc_94']:6.1f} "
              f"{r['one_minus_ned']:6.3f} {r['images_per_s']:7.1f} {r['speed_vs_ar']:6.2f}x"
              f" | {'':9s} {100 * sy['word_acc_36']:6.1f} {sy['one_minus_ned']:6.3f}")
    args.results.mkdir(parents=True, exist_ok=True)
    out = {"machine": platform.platform(), "processor": platform.processor(), "threads": args.threads,
           "crops": n, "synthetic_crops": len(pairs), "batch_size": args.batch_size, "rounds": args.rounds, "mdiff": str(args.mdiff),
           "ar": str(args.ar), "rows": rows}
    with atomic_open(args.results / "str.json", "w") as f:
        json.dump(out, f, indent=1)
    if not args.no_plot and (p := plot(rows, args.results / "str_accuracy_vs_steps.png")):
        print(f"wrote {p}")
    print(f"wrote {args.results / 'str.json'}")


if __name__ == "__main__":
    main()
