"""Two CPU processes under torchrun (DDP, gloo) train to the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from maskzoo.core.training import read_metrics

sys.path.insert(0, str(Path(__file__).parent))
from _trainer_toy import run_in_process  # noqa: E402

SCRIPT = Path(__file__).with_name("_trainer_toy.py")
ARGS = [
    "max_steps=8",
    "save_every=4",
    "log_every=2",
    "grad_accum_steps=2",  # exercises no_sync on the first micro-batch
    "ema_decay=0.5",
    "warmup_steps=2",
    "lr=0.01",
    "batch_size=8",  # global: 4 per rank under torchrun
    "progress=false",
    "device=cpu",  # the exactness claims are about CPU runs, also on a machine with a GPU
    "eval=1",
    "eval_every=4",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _weights(run_dir: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(run_dir / "checkpoints" / "step_0000008" / name))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_torchrun_two_processes_match_single_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    proc = subprocess.Popen([*launch, str(SCRIPT), str(multi), *ARGS], env=ENV, stderr=subprocess.PIPE)
    run_in_process([str(single), *ARGS])  # the single-process reference, while torchrun starts up
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]

    for name in ("model.safetensors", "ema.safetensors"):
        a, b = _weights(single, name), _weights(multi, name)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    # only rank 0 wrote metrics; the logged loss is the mean over both ranks = the single-process loss
    rows_s, rows_m = read_metrics(single / "metrics.jsonl"), read_metrics(multi / "metrics.jsonl")
    evals_s, evals_m = ([r for r in rows if "eval/loss" in r] for rows in (rows_s, rows_m))
    rows_s, rows_m = ([r for r in rows if "loss" in r] for rows in (rows_s, rows_m))
    assert [r["step"] for r in rows_m] == [r["step"] for r in rows_s] == [2, 4, 6, 8]
    # evaluation ran on BOTH ranks (no rank idles in a collective while rank 0 evaluates) at 0, 4 and 8
    assert [r["step"] for r in evals_m] == [r["step"] for r in evals_s] == [0, 4, 8]
    assert [(multi / f"evaluated_by_rank_{r}").read_text() for r in (0, 1)] == ["xxx", "xxx"]
    for rs, rm in zip(evals_s, evals_m):
        assert rm["eval/loss"] == pytest.approx(rs["eval/loss"], rel=1e-5)
    for rs, rm in zip(rows_s, rows_m):
        assert rm["loss"] == pytest.approx(rs["loss"], rel=1e-5)
    # both ranks' RNG states are in the checkpoint, for an exact multi-process resume
    state = torch.load(multi / "checkpoints/step_0000008/trainer_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # ranks seeded differently
