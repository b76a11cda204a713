"""Resume provenance: a resumed run continues the recipe it was started with, or says what changed.

Every checkpoint stores the resolved recipe it was trained with (``config.yaml``). On resume the Trainer compares
it with the current recipe key by key (nested keys dotted: ``model.n_layers``, ``train.lr``). A changed value
is refused with one line naming the keys, unless the key is on the allow-list: :data:`RESUMABLE` (what
cannot change the model, the objective or the data: run length, logging/eval/checkpoint intervals, evaluation
settings, device, export path) plus the run's own ``train.resume_allow_changes`` patterns. Keys present on
only one side (a maskzoo upgrade added or removed a field) are not a change.

Patterns are ``fnmatch`` patterns matched against the dotted key, or against any dotted suffix of it:
``max_steps`` matches ``train.max_steps``; ``eval.*`` matches ``eval.windows``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from maskzoo.core.config import to_yaml
from maskzoo.core.errors import UserError

__all__ = ["RESUMABLE", "changed_keys", "check_resume", "flatten"]

#: Keys that may change between a run and its resumption (the learning-rate schedule's length is max_steps).
RESUMABLE: tuple[str, ...] = (
    "max_steps",
    "log_every",
    "eval_every",
    "eval_at_start",
    "save_every",
    "keep_last",
    "progress",
    "device",
    "ddp_backend",
    "ddp_find_unused_parameters",
    "resume_allow_changes",
    "eval.*",
    "export",
    "export_dir",
    "run_dir",
)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (an empty mapping stays a value)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _matches(key: str, patterns: Iterable[str]) -> bool:
    parts = key.split(".")
    suffixes = [".".join(parts[i:]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(s, p) for p in patterns for s in suffixes)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], allowed: Iterable[str] = ()) -> list[str]:
    """Keys of both flattened recipes whose values differ and that no ``allowed`` pattern covers, sorted."""
    a, b = flatten(old), flatten(new)
    allowed = list(allowed)
    return sorted(k for k in a.keys() & b.keys() if a[k] != b[k] and not _matches(k, allowed))


def _plain(cfg: Any) -> dict[str, Any]:
    """A recipe (dataclass, DictConfig, dict) as the plain data its YAML file holds (same types as a reload)."""
    return yaml.safe_load(to_yaml(cfg)) or {}


def check_resume(stored: str | os.PathLike, current: Any, allow: Iterable[str] = ()) -> None:
    """UserError naming every key whose value in ``current`` differs from the recipe in file ``stored``,
    apart from :data:`RESUMABLE` and ``allow``. A missing ``stored`` file (a run from before recipes were kept)
    is not checked."""
    stored = Path(stored)
    if not stored.is_file():
        return
    try:
        old = yaml.safe_load(stored.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{stored}: the stored recipe is not valid YAML ({str(e).splitlines()[0]})") from None
    new = _plain(current)
    if not isinstance(old, Mapping):
        raise UserError(f"{stored}: the stored recipe is not a mapping")
    keys = changed_keys(old, new, [*RESUMABLE, *allow])
    if keys:
        a, b = flatten(old), flatten(new)
        shown = ", ".join(f"{k} ({a[k]!r} -> {b[k]!r})" for k in keys[:6])
        more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
        raise UserError(
            f"cannot resume: the recipe changed since {stored.parent.name}: {shown}{more}; restore those values, "
            f"use a new run_dir, or allow them with train.resume_allow_changes=[...]"
        )
