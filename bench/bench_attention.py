"""Attention backends side by side: wall time of sdpa / eager (/ xformers on CUDA) at several sequence lengths.

    python bench/bench_attention.py [--device cpu|cuda] [--lengths 128 256 512 1024] [--threads 1]

Prints a table of median times (ms) and the ratio eager / sdpa (and xformers / sdpa); writes
``bench/results/attention.json``. Each configuration is timed with and without a key-padding mask (a quarter of
each row padded), bidirectional, batch 4, 8 heads of dimension 64 (fp32 on CPU, bf16 on CUDA).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from maskzoo.core.attention import attention, available_backends, padding_mask
from maskzoo.core.fileio import atomic_open

RESULTS = Path(__file__).parent / "results" / "attention.json"


def _time(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    backends = available_backends(device)
    g = torch.Generator(device="cpu").manual_seed(0)

    rows = []
    header = f"{'L':>6} {'mask':>5} " + " ".join(f"{b + ' ms':>12}" for b in backends)
    header += " " + " ".join(f"{b + '/sdpa':>14}" for b in backends if b != "sdpa")
    print(header)
    for n in args.lengths:
        shape = (args.batch, args.heads, n, args.head_dim)
        q, k, v = (torch.randn(shape, generator=g).to(device, dtype) for _ in range(3))
        am = torch.ones(args.batch, n, dtype=torch.long)
        am[:, : n // 4] = 0
        for masked in (False, True):
            mask = padding_mask(am).to(device) if masked else None
            times = {}
            with torch.no_grad():
                for b in backends:
                    times[b] = _time(functools.partial(attention, q, k, v, mask, backend=b), device, args.repeats)
            ratios = {b: times[b] / times["sdpa"] for b in backends if b != "sdpa"}
            rows.append({"length": n, "masked": masked, "ms": {b: 1e3 * t for b, t in times.items()},
                         "ratio_to_sdpa": ratios})
            line = f"{n:>6} {'yes' if masked else 'no':>5} " + " ".join(f"{1e3 * times[b]:>12.3f}" for b in backends)
            line += " " + " ".join(f"{r:>14.2f}" for r in ratios.values())
            print(line, flush=True)

    result = {
        "benchmark": "attention backends",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": args.threads,
        "dtype": str(dtype),
        "batch": args.batch,
        "heads": args.heads,
        "head_dim": args.head_dim,
        "torch": torch.__version__,
        "rows": rows,
    }
    with atomic_open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
