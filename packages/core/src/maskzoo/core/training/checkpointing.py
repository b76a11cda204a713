"""Atomic training checkpoints with everything needed for an exact resume.

Layout (``run_dir/checkpoints``)::

    step_0000400/
        model.safetensors    model weights (safetensors; tied weights stored once)
        ema.safetensors      EMA shadow weights (only when EMA is on)
        trainer_state.pt     {"step", "optimizer", "scheduler", "scaler", "data", "rng": [per rank], "world_size"}
        config.yaml          the resolved run config
        meta.json            {"format": "maskzoo-train-checkpoint", "version": 1, "step": 400}
    latest                   text file naming the newest complete checkpoint ("step_0000400")

A checkpoint directory is built under a temporary name and renamed into place only once complete
(:func:`maskzoo.core.fileio.atomic_dir`), then ``latest`` is replaced atomically; a process killed at any moment
therefore leaves the previous checkpoint intact and ``latest`` pointing at a complete one. ``trainer_state.pt``
holds only tensors and primitive containers and is read with ``torch.load(weights_only=True)``: nothing in a
checkpoint is ever executed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from maskzoo.core.config import save_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir, atomic_open, remove_tree

FORMAT = "maskzoo-train-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")
_REQUIRED = ("model.safetensors", "trainer_state.pt", "meta.json")
_OPTIONAL = ("ema.safetensors", "config.yaml")


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


# --- RNG state ------------------------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA generator states as tensors and primitives (weights_only-safe)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _owned_generators(obj: Any) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` objects ``obj`` (a loss function) holds: its attributes, a ``functools.partial``'s
    arguments, a closure's cells; by name, one level deep."""
    found: dict[str, Any] = {}
    found.update(getattr(obj, "__dict__", {}) or {})
    if isinstance(obj, functools.partial):
        found.update({f"arg{i}": a for i, a in enumerate(obj.args)})
        found.update(obj.keywords)
    closure = getattr(obj, "__closure__", None) or ()
    names = getattr(getattr(obj, "__code__", None), "co_freevars", ())
    for name, cell in zip(names, closure):
        with contextlib.suppress(ValueError):  # an empty cell
            found[f"closure.{name}"] = cell.cell_contents
    return {k: v for k, v in sorted(found.items()) if isinstance(v, torch.Generator)}


def capture_owned_generators(obj: Any) -> dict[str, torch.Tensor]:
    """States of the generators ``obj`` owns (see :func:`_owned_generators`), for the checkpoint."""
    return {name: g.get_state() for name, g in _owned_generators(obj).items()}


def restore_owned_generators(obj: Any, states: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`capture_owned_generators`; a generator named in the checkpoint must still exist."""
    gens = _owned_generators(obj)
    missing = sorted(set(states) - set(gens))
    if missing:
        raise UserError(f"the checkpoint holds random states of loss generators {missing} that the loss lacks now")
    for name, state in states.items():
        gens[name].set_state(state)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# --- writing --------------------------------------------------------------------------------------------------


def _write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``trainer_state.pt`` (a separate function so tests can make it fail mid-write)."""
    torch.save(state, path)


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    *,
    model: nn.Module,
    trainer_state: dict[str, Any],
    ema_state: dict[str, torch.Tensor] | None = None,
    config: Any = None,
    keep_last: int = 3,
) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically, point ``latest`` at it, prune to ``keep_last``."""
    root = Path(root)
    final = root / step_dir_name(step)
    with atomic_dir(final) as tmp:  # a new step dir appears whole; rewriting one replaces our files in it
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        if ema_state is not None:
            safetensors.torch.save_file(
                {k: v.cpu() for k, v in ema_state.items()}, str(tmp / "ema.safetensors")
            )
        if config is not None:
            save_config(config, tmp / "config.yaml")
        _write_state(tmp / "trainer_state.pt", {"step": step, **trainer_state})
        (tmp / "meta.json").write_text(
            json.dumps({"format": FORMAT, "version": VERSION, "step": step}) + "\n"
        )
        written = {p.name for p in tmp.iterdir()}
    for optional in _OPTIONAL:  # an optional file of an earlier write of this step must not outlive it
        if optional not in written:
            (final / optional).unlink(missing_ok=True)
    with atomic_open(root / "latest", "w") as f:
        f.write(final.name + "\n")
    prune(root, keep_last, keep=final)
    return final


def _complete(path: Path) -> bool:
    return path.is_dir() and all((path / f).is_file() for f in _REQUIRED)


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and _complete(p)]
    return [p for _, p in sorted(found)]


def prune(root: str | os.PathLike, keep_last: int, keep: Path | None = None) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (never ``keep``) and leftovers of killed writes."""
    root = Path(root)
    for p in root.iterdir():  # our temporaries of killed writes (".step_0000400.*"): this dir is ours alone
        if p.name.startswith(".step_") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    ckpts = list_checkpoints(root)
    for p in ckpts[: max(0, len(ckpts) - keep_last)]:
        if keep is not None and p.resolve() == keep.resolve():
            continue
        remove_tree(p)


def find_latest(root: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest`` names, or the newest complete one when the pointer is missing/stale."""
    root = Path(root)
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if _complete(candidate):
            return candidate
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


# --- reading --------------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike, model: nn.Module, device: torch.device | str = "cpu") -> dict:
    """Load weights into ``model`` (strict) and return the trainer state (+ ``"ema"`` tensors when present)."""
    path = Path(path)
    if not _complete(path):
        raise UserError(f"{path}: not a complete training checkpoint (needs {', '.join(_REQUIRED)})")
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a maskzoo training checkpoint (format {meta.get('format')!r})")
    weights = path / "model.safetensors"
    try:  # the header is checked against the file size: a truncated/corrupt file fails here, cheaply
        with safetensors.safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise UserError(f"{weights}: cannot read weights ({str(e).splitlines()[0]})") from None
    try:
        missing, unexpected = safetensors.torch.load_model(model, str(weights), strict=False)
    except RuntimeError as e:  # shape mismatch
        raise UserError(f"{path}: weights do not fit the model ({str(e).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise UserError(f"{path}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
    ema_file = path / "ema.safetensors"
    state["ema"] = (
        safetensors.torch.load_file(str(ema_file), device=str(device)) if ema_file.is_file() else None
    )
    return state
