"""The ``generation`` block of a checkpoint: the sampling settings that give the model's best output.

Like Hugging Face's ``generation_config.json``, a model directory may carry its preferred sampling settings; they
live in ``config.json`` under ``extra.generation`` and use the keyword names of
:func:`maskzoo.core.sampling.generate`::

    "generation": {"gen_length": 128, "temperature": 0.8, "remasking": "low_confidence", "top_p": 0.95}

Precedence, the same for the command line and the Python helpers (``generate_text``, ``load_pipeline``):
explicit arguments  >  the checkpoint's block  >  the caller's fallback  >  :data:`CORE_FALLBACK`.
``steps`` and ``block_length`` that nobody sets default to ``gen_length`` (one token per step, one block).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from maskzoo.core.errors import UserError

CACHE_MODES = ("none", "prefix", "dual")
CORE_FALLBACK: dict[str, Any] = {"temperature": 0.0, "remasking": "low_confidence"}

# key -> (check, what a valid value is)
_INT_POS = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1")
_FINITE = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "")
_CHECKS: dict[str, tuple[Any, str]] = {
    "gen_length": _INT_POS,
    "steps": _INT_POS,
    "block_length": _INT_POS,
    "temperature": (lambda v: _FINITE[0](v) and v >= 0, "a finite number >= 0"),
    "top_k": _INT_POS,
    "top_p": (lambda v: _FINITE[0](v) and 0 < v <= 1, "a number in (0, 1]"),
    "remasking": (lambda v: isinstance(v, str) and v != "", "a sampler name"),
    "cache": (lambda v: v in CACHE_MODES, f"one of {', '.join(CACHE_MODES)}"),
    "threshold": (lambda v: _FINITE[0](v) and 0 < v <= 1, "a number in (0, 1]"),
    "factor": (lambda v: _FINITE[0](v) and v > 0, "a finite number > 0"),
}
GENERATION_KEYS = tuple(_CHECKS)
_OPTIONAL = ("top_k", "top_p", "cache", "threshold", "factor")  # passed to generate() only when set


def validate_generation_block(block: Any, source: str | None) -> dict[str, Any]:
    """Check a generation block (``None`` = empty); UserError naming ``source`` and the field otherwise
    (``source=None``: keyword arguments, named alone).

    ``null`` values mean "not set". Returns a plain dict without the unset keys.
    """
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise UserError(f"{source}: 'generation' must be a mapping of sampling settings, not {type(block).__name__}")
    out: dict[str, Any] = {}
    for key, value in block.items():
        where = f"{source}: generation." if source else ""
        if key not in _CHECKS:
            raise UserError(f"{where or 'unknown setting '}{key}: not a generation setting "
                            f"(known: {', '.join(GENERATION_KEYS)})")
        if value is None:
            continue
        ok, what = _CHECKS[key]
        if not ok(value):
            raise UserError(f"{where}{key} must be {what}, got {value!r}")
        out[key] = value
    return out


def model_generation_block(model: Any) -> dict[str, Any]:
    """The validated ``extra.generation`` block of a model loaded by :func:`maskzoo.core.load_model` ({} if none)."""
    extra = getattr(model, "checkpoint_extra", None) or {}
    return validate_generation_block(extra.get("generation"), "config.json")


def resolve_generation(explicit: Mapping[str, Any] | None = None, block: Mapping[str, Any] | None = None,
                       fallback: Mapping[str, Any] | None = None, *, names: Mapping[str, str] | None = None
                       ) -> dict[str, Any]:
    """Merge the layers (module docstring) into keyword arguments for ``generate()`` and check they fit together.

    ``explicit`` values of ``None`` count as unset. ``names`` maps keys to how the user spelled them in messages
    (``{"gen_length": "--length"}`` on the command line). Unset optional keys are left out of the result, so it
    can be passed to any ``generate()`` version.
    """
    names = dict(names or {})
    layers = [("built-in default", CORE_FALLBACK), ("the caller's default", fallback or {}),
              ("the checkpoint's generation block", block or {}), ("", explicit or {})]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for where, layer in layers:
        for key, value in validate_generation_block(dict(layer), where or None).items():
            merged[key], origin[key] = value, where
    if "gen_length" not in merged:
        raise UserError(f"no generation length given: set {names.get('gen_length', 'gen_length')}")
    length = merged["gen_length"]
    merged.setdefault("steps", length)
    merged.setdefault("block_length", length)

    def label(key: str) -> str:
        where = origin.get(key)
        return names.get(key, key) + (f" (from {where})" if where else "")

    block_len, steps = merged["block_length"], merged["steps"]
    if length % block_len:
        raise UserError(f"{label('gen_length')} = {length} is not a multiple of {label('block_length')} = "
                        f"{block_len}")
    if steps % (length // block_len):
        raise UserError(f"{label('steps')} = {steps} is not divisible by the number of blocks "
                        f"{length // block_len} ({names.get('gen_length', 'gen_length')} / "
                        f"{names.get('block_length', 'block_length')})")
    if merged.get("cache") == "none":
        del merged["cache"]
    return {k: v for k, v in merged.items() if k not in _OPTIONAL or v is not None}
