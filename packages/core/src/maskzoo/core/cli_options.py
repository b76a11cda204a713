"""The options every ``maskzoo`` verb shares, defined once (re-exported by :mod:`maskzoo.core.cli`).

Package authors build their verbs from these pieces so that every area spells an option the same way, shows
its default in ``--help`` and rejects a bad value at once (one line, exit status 2):

=============================  ===============================================================================
``add_common_options``         ``--seed --device --threads --quiet``; ``apply_common_options(args)`` applies them
``add_output_options``         ``--out`` (a file, or ``-`` for stdout) and ``--jsonl``; write with ``open_output``
``add_generation_options``     ``--num --length --steps --block-length --temperature --top-k --top-p
                               --remasking --cache --threshold --factor``; ``generation_kwargs(args, block)``
``add_checkpoint_option``      ``--checkpoint`` (zoo name, model dir, or run dir); ``resolve_checkpoint``
``add_batch_size_option``      ``--batch-size``
``add_recipe_options``         training verbs: ``--config``, ``KEY=VALUE`` overrides, ``--no-resume``, ``--threads
                               --quiet``; ``run_recipe(args, train)`` runs the verb
argparse types                 ``positive_int nonneg_int seed_int positive_float nonneg_float probability
                               unit_interval device_name output_path``
=============================  ===============================================================================

Nothing here imports torch at module import (``maskzoo --help`` must stay fast); the sampler list for
``--remasking`` is read from :mod:`maskzoo.core.sampling` only when it is needed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from maskzoo.core.errors import UserError
from maskzoo.core.generation_config import CACHE_MODES, resolve_generation

# ----------------------------------------------------------------------------------------------- value types


def _parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _parse_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    value = _parse_int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


SEED_MAX = 2**32 - 1


def seed_int(text: str) -> int:
    """A random seed: an integer in [0, 2**32 - 1] (what torch, numpy and Python all accept)."""
    value = _parse_int(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _parse_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    value = _parse_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A number in (0, 1] (top-p, a confidence threshold)."""
    value = _parse_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1]."""
    value = _parse_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


_DEVICE = re.compile(r"^(cpu|cuda|mps|cuda:\d+|auto)$")


def device_name(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (checked against the machine by apply_common_options)."""
    value = str(text).strip()
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N, mps or auto, got {text!r}")
    return value


def output_path(text: str) -> str:
    """``-`` (stdout) or a file path that is not a directory and whose nearest existing parent is a directory."""
    value = str(text)
    if value in ("-", "/dev/stdout", "/dev/stderr"):
        return value
    if value == "" or value.endswith(os.sep) or os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file path (or - for stdout)")
    parent = Path(os.path.abspath(value)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {parent} is not writable")
    return value


# ----------------------------------------------------------------------------------------------- common


def add_common_options(p: argparse.ArgumentParser, *, seed: int | None = 0, device: str | None = "cpu") -> None:
    """``--seed``, ``--device``, ``--threads``, ``--quiet``; apply them with :func:`apply_common_options`.

    ``seed=None`` / ``device=None`` leave that option out (training verbs take both from the recipe's
    ``train.seed`` / ``train.device``)."""
    from maskzoo.core.threads import physical_cores

    if seed is not None:
        p.add_argument("--seed", type=seed_int, default=seed, metavar="N",
                       help="random seed; the same seed repeats a run exactly (default: %(default)s)")
    if device is not None:
        p.add_argument("--device", type=device_name, default=device, metavar="DEV",
                       help="cpu, cuda, cuda:N, mps, or auto (cuda when available) (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help=f"torch CPU threads (default: $OMP_NUM_THREADS if set, else the physical cores: "
                        f"{physical_cores()} here); use 1 on a machine shared with other jobs")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bars or status lines on stderr (errors still print)")


def apply_common_options(args: argparse.Namespace) -> Any:
    """Apply ``--quiet``, ``--threads`` and ``--seed`` (torch and Python ``random``); return the torch device."""
    import random

    import torch

    from maskzoo.core.progress import set_quiet
    from maskzoo.core.threads import set_threads

    set_quiet(getattr(args, "quiet", False))
    set_threads(getattr(args, "threads", None))
    seed = getattr(args, "seed", 0)
    random.seed(seed)
    torch.manual_seed(seed)
    return resolve_device(getattr(args, "device", "cpu"))


def resolve_device(name: str) -> Any:
    """The torch device for ``name`` (``auto``: cuda when available); UserError when it is not available."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError("--device mps: MPS is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise UserError(f"--device {name}: {e}") from None


# ----------------------------------------------------------------------------------------------- output


def add_output_options(p: argparse.ArgumentParser, *, default: str | None = "-", jsonl: bool = True,
                       what: str = "results") -> None:
    """``--out`` (a file, or ``-`` for stdout; ``default=None`` makes it required) and ``--jsonl``."""
    if default is None:
        p.add_argument("--out", type=output_path, required=True, metavar="PATH",
                       help=f"where to write the {what} (a file, or - for stdout)")
    else:
        p.add_argument("--out", type=output_path, default=default, metavar="PATH",
                       help=f"where to write the {what}: a file, or - for stdout (default: %(default)s)")
    if jsonl:
        p.add_argument("--jsonl", action="store_true", help="write one JSON object per line")


@contextmanager
def open_output(path: str | None, mode: str = "w") -> Iterator[IO]:
    """Open ``--out`` for writing: stdout for ``-``/None, else an atomic file (appears only when complete)."""
    from maskzoo.core.fileio import atomic_open

    with atomic_open("-" if path is None else path, mode) as f:
        yield f


# ----------------------------------------------------------------------------------------------- generation


class _LazyChoices:
    """argparse ``choices`` read from :data:`maskzoo.core.sampling.SAMPLERS` when first needed (imports torch)."""

    def _names(self) -> list[str]:
        from maskzoo.core.sampling import SAMPLERS

        return list(SAMPLERS)

    def __contains__(self, item: object) -> bool:
        return item in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


SAMPLER_CHOICES = _LazyChoices()

# CLI destination -> keyword of generate() / key of the checkpoint's generation block
GENERATION_DESTS = {"length": "gen_length", "steps": "steps", "block_length": "block_length",
                    "temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "remasking": "remasking",
                    "cache": "cache", "threshold": "threshold", "factor": "factor"}
FLAG_NAMES = {key: "--" + dest.replace("_", "-") for dest, key in GENERATION_DESTS.items()}


def _default_help(value: Any, fallback: Any) -> str:
    if value is not None:
        return "%(default)s"
    if fallback is None:
        return "the checkpoint's generation block, else unset"
    return f"the checkpoint's generation block, else {fallback}"


def add_generation_options(p: argparse.ArgumentParser, *, num: int | None = 1, length: int | None = None,
                           steps: int | None = None, block_length: int | None = None,
                           temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                           remasking: str | None = None, cache: str | None = None, threshold: float | None = None,
                           factor: float | None = None, length_fallback: int | None = None,
                           length_unit: str = "tokens") -> None:
    """The sampling options. A ``None`` default means "the checkpoint's generation block" (then the built-in
    fallbacks: temperature 0, low_confidence, steps = block length = --length). ``num=None`` leaves out ``--num``
    (verbs with one output per input). ``length_fallback`` is only shown in the help of ``--length``."""
    if num is not None:
        p.add_argument("--num", type=positive_int, default=num, metavar="N",
                       help="number of samples (default: %(default)s)")
    p.add_argument("--length", type=positive_int, default=length, metavar="N",
                   help=f"{length_unit} to generate (default: {_default_help(length, length_fallback)})")
    p.add_argument("--steps", type=positive_int, default=steps, metavar="N",
                   help=f"sampling steps, split over the blocks (default: {_default_help(steps, '--length')})")
    p.add_argument("--block-length", type=positive_int, default=block_length, metavar="N",
                   help="semi-autoregressive block; must divide --length "
                        f"(default: {_default_help(block_length, '--length')})")
    p.add_argument("--temperature", type=nonneg_float, default=temperature, metavar="T",
                   help=f"0 = greedy; > 0 samples (default: {_default_help(temperature, 0.0)})")
    p.add_argument("--top-k", type=positive_int, default=top_k, metavar="K",
                   help=f"sample among the K most likely tokens (default: {_default_help(top_k, None)})")
    p.add_argument("--top-p", type=probability, default=top_p, metavar="P",
                   help=f"nucleus sampling mass in (0, 1] (default: {_default_help(top_p, None)})")
    p.add_argument("--remasking", choices=SAMPLER_CHOICES, default=remasking, metavar="NAME",
                   help="sampler, any name of maskzoo.core.sampling.SAMPLERS: low_confidence, margin, entropy, "
                        "random, first_hitting, ancestral, ... "
                        f"(default: {_default_help(remasking, 'low_confidence')})")
    p.add_argument("--cache", choices=CACHE_MODES, default=cache,
                   help=f"KV cache for fast decoding (default: {_default_help(cache, 'none')})")
    p.add_argument("--threshold", type=probability, default=threshold, metavar="C",
                   help="parallel decoding: reveal every token more confident than C "
                        f"(default: {_default_help(threshold, 'unset')})")
    p.add_argument("--factor", type=positive_float, default=factor, metavar="F",
                   help=f"parallel decoding by the factor rule (default: {_default_help(factor, 'unset')})")


def generation_kwargs(args: argparse.Namespace, config_defaults: Mapping[str, Any] | None = None,
                      fallback: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``generate()``: the options given > ``config_defaults`` (the checkpoint's
    generation block) > ``fallback`` (the verb's own defaults, e.g. ``{"gen_length": 128}``) > the core's.

    Checks that the settings fit together (``--block-length`` divides ``--length``, ...), naming the flag and
    where each value came from. cache / threshold / factor / top-k / top-p appear only when set.
    """
    explicit = {key: getattr(args, dest) for dest, key in GENERATION_DESTS.items() if hasattr(args, dest)}
    return resolve_generation(explicit, config_defaults, fallback, names=FLAG_NAMES)


# ----------------------------------------------------------------------------------------------- checkpoints


def add_checkpoint_option(p: argparse.ArgumentParser, *, default: str | None = None,
                          what: str = "the embedded default model") -> None:
    """``--checkpoint``: a zoo name, a model directory, or a training run directory (see resolve_checkpoint)."""
    shown = default if default is not None else what
    p.add_argument("--checkpoint", default=default, metavar="PATH|NAME",
                   help="zoo name, model directory, or run directory (its exported model, else its latest "
                        f"checkpoint) (default: {shown})")


def add_batch_size_option(p: argparse.ArgumentParser, default: int) -> None:
    """``--batch-size`` (an integer >= 1)."""
    p.add_argument("--batch-size", type=positive_int, default=default, metavar="N",
                   help="items per forward pass; lower it to save memory (default: %(default)s)")


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _latest_step(run_dir: Path) -> Path | None:
    root = run_dir / "checkpoints"
    latest = root / "latest"
    if latest.is_file():
        name = latest.read_text(encoding="utf-8").strip()
        if name and "/" not in name and (root / name / "model.safetensors").is_file():
            return root / name
    steps = sorted(d for d in root.glob("step_*") if (d / "model.safetensors").is_file()) if root.is_dir() else []
    return steps[-1] if steps else None


def is_step_checkpoint(path: str | os.PathLike) -> bool:
    """A trainer checkpoint directory (``step_NNNNNNN`` with model.safetensors and meta.json, no config.json)."""
    p = Path(path)
    return p.is_dir() and (p / "model.safetensors").is_file() and (p / "meta.json").is_file() \
        and not (p / "config.json").is_file()


def resolve_checkpoint(value: str | os.PathLike | None, *, steps_ok: bool = False,
                       quiet: bool | None = None) -> str | None:
    """What ``--checkpoint value`` names, for the area's loader.

    - ``None``, a zoo name (no such path) or a model directory (has ``config.json``) or a file: unchanged.
    - A training run directory (has ``checkpoints/`` or ``config.yaml``): its exported model (the recipe's
      ``export:`` path, else ``run_dir/model``) when there is one, else its latest step checkpoint when the area
      can load those (``steps_ok``); a status line on stderr says which was used.
    - A step checkpoint without ``steps_ok``: a UserError that points at the run's exported model.
    """
    from maskzoo.core.progress import status

    if value is None:
        return None
    path = Path(value)
    if not path.is_dir() or (path / "config.json").is_file():
        if not path.exists() and (os.sep in str(value) or str(value).startswith(".")):
            raise UserError(f"--checkpoint {value}: no such file or directory")
        return str(value)
    if is_step_checkpoint(path):
        if steps_ok:
            return str(path)
        run = path.parent.parent
        raise UserError(f"--checkpoint {value} is a training checkpoint; this command loads exported models: "
                        f"pass the run directory {run} or its exported model")
    if not ((path / "checkpoints").is_dir() or (path / "config.yaml").is_file()):
        return str(value)  # not a run directory: the area's loader says what is wrong with it
    recipe = _read_yaml(path / "config.yaml")
    candidates = []
    for key in ("export", "export_dir"):
        if isinstance(recipe.get(key), str) and recipe[key]:
            candidates.append(Path(recipe[key]))
    candidates.append(path / "model")
    for cand in candidates:
        if (cand / "config.json").is_file():
            status(f"--checkpoint {value} is a run directory: using its exported model {cand}", quiet=quiet)
            return str(cand)
    step = _latest_step(path)
    if step is None:
        raise UserError(f"--checkpoint {value}: run directory without an exported model or a checkpoint yet")
    if not steps_ok:
        raise UserError(f"--checkpoint {value}: run directory without an exported model yet (latest checkpoint "
                        f"{step.name}; this command loads exported models: let the run finish)")
    status(f"--checkpoint {value} is a run directory without an exported model: using its latest checkpoint "
           f"{step}", quiet=quiet)
    return str(step)


# ----------------------------------------------------------------------------------------------- recipes


def add_recipe_options(p: argparse.ArgumentParser, example: str, default: str | None = None) -> None:
    """Options every training command shares: ``--config`` (a YAML recipe), key=value overrides, ``--no-resume``,
    and ``--threads`` / ``--quiet`` (no ``--seed`` / ``--device``: they come from the recipe's ``train.seed`` /
    ``train.device``).

    Recipe key names are the same in every area: ``run_dir:`` (checkpoints, metrics, the resolved config),
    ``export:`` (where the final model is written; default ``run_dir/model``), ``model.init:`` (weights to start
    from), ``train:`` (the core TrainConfig), ``data:`` and ``eval:`` blocks.
    """
    if default is None:
        p.add_argument("--config", required=True, metavar="YAML", help=f"YAML recipe, e.g. {example}")
    else:
        p.add_argument("--config", default=default, metavar="YAML", help="YAML recipe (default: %(default)s)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. train.max_steps=100")
    p.add_argument("--no-resume", action="store_true",
                   help="start over even if the run directory has a checkpoint")
    add_common_options(p, seed=None, device=None)


def require_recipe(path: str) -> None:
    """The one error line of every training verb whose ``--config`` file is missing."""
    if not Path(path).is_file():
        raise UserError(f"recipe not found: {path} (run from the repository root, or pass --config FILE)")


def run_recipe(args: argparse.Namespace, train: Callable[..., Any], what: str = "model",
               hint: str | None = None) -> int:
    """The body of every training verb: the recipe must exist, ``--quiet`` / ``--threads`` / ``--seed`` apply
    (``--quiet`` also turns the trainer's bar off), ``train(config, overrides, resume=)`` runs, and one line says
    where ``what`` went (``hint``: a follow-up command, ``{out}`` filled in)."""
    from maskzoo.core.progress import status

    require_recipe(args.config)
    apply_common_options(args)
    overrides = [*args.overrides, *(["train.progress=false"] if getattr(args, "quiet", False) else [])]
    out = train(args.config, overrides, resume=not args.no_resume)
    status(f"{what} written to {out}" + (f"  (try: {hint.format(out=out)})" if hint else ""))
    return 0


def print_error(message: str) -> None:
    """The one error line of the command (``maskzoo: error: ...``)."""
    sys.stderr.write(f"maskzoo: error: {message}\n")
