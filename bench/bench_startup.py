"""Start-up and first-call times of the ``maskzoo`` command, before/after, measured side by side in one run.

    python bench/bench_startup.py [--before /tmp/cli/before] [--repeats 5] [--threads N]

Three figures, each a fresh interpreter (what a user waits for):

1. ``maskzoo --help``;
2. loading the embedded text model: ``from maskzoo.core import load_model; load_model("text-char-shakespeare")``
   (interpreter start and imports included);
3. the first default text sample: ``maskzoo text generate --prompt ROMEO:`` with no other option, i.e. each
   version's own defaults (the sample itself is recorded too).

``--before DIR`` is a checkout of an older commit (``git worktree add DIR a0531af``); its packages are put first on
``PYTHONPATH`` so the same interpreter runs the old code. Runs alternate (before, after, before, ...) so load on a
shared machine hits both alike; figures are medians; ``ratio`` = before / after. ``--threads N`` exports
``OMP_NUM_THREADS=N`` for both (default: unset, as a new user runs it). Writes ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from maskzoo.core.fileio import atomic_open

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.json"
LOAD = ("from maskzoo.core import load_model\n"
        "load_model('text-char-shakespeare')\n")
CASES = {
    "help": ["-m", "maskzoo.core.cli", "--help"],
    "load_model": ["-c", LOAD],
    "first_text_sample": ["-m", "maskzoo.core.cli", "text", "generate", "--prompt", "ROMEO:"],
}


def _env(checkout: Path | None, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONPATH", "MASKZOO_PROGRESS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in sorted(checkout.glob("packages/*/src")))
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{args} failed ({r.returncode}): {r.stderr[-500:]}")
    return seconds, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=None, help="checkout of the older commit (default: none)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per case and version (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both (default: unset)")
    args = ap.parse_args()
    versions = {"after": _env(None, args.threads)}
    if args.before is not None:
        versions = {"before": _env(args.before, args.threads), **versions}
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "load_avg_start": os.getloadavg()[0]},
                     "threads": args.threads, "repeats": args.repeats, "cases": {}}
    for case, argv in CASES.items():
        times: dict[str, list[float]] = {v: [] for v in versions}
        samples: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, env in versions.items():
                seconds, out = _run(argv, env)
                times[name].append(seconds)
                samples.setdefault(name, out)
        row = {name: {"median_s": statistics.median(ts), "runs_s": ts} for name, ts in times.items()}
        if "before" in row:
            row["ratio_before_over_after"] = row["before"]["median_s"] / row["after"]["median_s"]
        if case == "first_text_sample":
            row["samples"] = samples
        results["cases"][case] = row
        line = "  ".join(f"{n} {row[n]['median_s']:.2f} s" for n in versions)
        ratio = f"  ratio {row['ratio_before_over_after']:.1f}x" if "before" in row else ""
        print(f"{case:18s} {line}{ratio}", flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()[0]
    for name, text in results["cases"]["first_text_sample"]["samples"].items():
        print(f"--- {name}: maskzoo text generate --prompt ROMEO:\n{text}", end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(RESULTS, "w") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
