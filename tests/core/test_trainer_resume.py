"""A training process SIGKILLed mid-run and resumed ends bit-identical to an uninterrupted run (CPU, fixed seed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import safetensors.torch
import torch

from maskzoo.core.training import read_metrics

sys.path.insert(0, str(Path(__file__).parent))
from _trainer_toy import run_in_process  # noqa: E402

SCRIPT = Path(__file__).with_name("_trainer_toy.py")
# dropout + EMA + accumulation: every piece of state (RNG, optimizer, EMA, data position) must survive the kill
ARGS = [
    "max_steps=16",
    "save_every=4",
    "log_every=2",
    "keep_last=2",
    "ema_decay=0.9",
    "grad_accum_steps=2",
    "dropout=0.2",
    "warmup_steps=3",
    "lr=0.01",
    "progress=false",
    "device=cpu",  # the exactness claims are about CPU runs, also on a machine with a GPU
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run_dir), *ARGS, *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _final(run_dir: Path, name: str) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(run_dir / "checkpoints" / "step_0000016" / name))


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    victim = _run(killed, "sleep=0.05")  # ~0.1 s per update: the kill lands mid-run
    run_in_process([str(full), *ARGS])  # the uninterrupted reference, while the victim starts up
    pointer = killed / "checkpoints" / "latest"
    deadline = time.monotonic() + 60
    while not (pointer.exists() and pointer.read_text().strip() >= "step_0000004"):
        assert victim.poll() is None, victim.communicate()[1].decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert not (killed / "checkpoints" / "step_0000016").exists()  # really killed before the end

    resumed = _run(killed, "resume=1")
    assert resumed.wait(timeout=60) == 0, resumed.communicate()[1].decode()

    for name in ("model.safetensors", "ema.safetensors"):
        a, b = _final(full, name), _final(killed, name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    # the metrics file has no duplicated or missing rows, and the logged losses match the reference run
    rows_full = [r for r in read_metrics(full / "metrics.jsonl")]
    rows_killed = [r for r in read_metrics(killed / "metrics.jsonl")]
    assert [r["step"] for r in rows_killed] == [r["step"] for r in rows_full] == list(range(2, 17, 2))
    assert [r["loss"] for r in rows_killed] == [r["loss"] for r in rows_full]
    # the wall clock carries over the resume: elapsed time never goes backwards (the killed run slept 0.1 s per step)
    elapsed = [r["elapsed_s"] for r in rows_killed]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 0.4, elapsed
