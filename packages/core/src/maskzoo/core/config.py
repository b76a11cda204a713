"""Typed run configurations: dataclass schemas, YAML recipes and ``key=value`` overrides (omegaconf).

A schema is a (possibly nested) ``@dataclass`` whose fields all have defaults or are ``MISSING``. A config is
built in three layers, later ones winning::

    schema defaults  <-  YAML recipe (optional)  <-  dotlist overrides ("train.lr=1e-3", "model.d_model=64")

and returned as an instance of the schema class (nested dataclasses stay dataclasses). omegaconf's struct mode
checks every layer against the schema: an unknown key (a typo) or a value of the wrong type (``max_steps=ten``)
raises :class:`~maskzoo.core.errors.UserError` naming the key, never a silently ignored setting. The resolved
config is written back as YAML with :func:`save_config` next to every run and checkpoint.

Example::

    cfg = load_config(RecipeConfig, "apps/recipes/text_char.yaml", ["train.max_steps=100"])
    save_config(cfg, run_dir / "config.yaml")

Configs read from files we did not write (a checkpoint's ``config.json``) go through :func:`validate_config`
*before* anything is built from them: every field is checked against the dataclass's type hints (int, float,
bool, str, ``X | None``, lists, dicts, nested dataclasses), floats must be finite, integers and optional
``ranges`` bounded, and an optional parameter-count estimate must stay within ``max_params``. Each mistake is a
one-line :class:`UserError` naming the field, so that an absurd ``n_layers: 1000000000`` never allocates memory::

    fields = validate_config(ESM2Config, meta["config"], source=f"{path}/config.json",
                             ranges={"num_layers": (1, 1024)}, param_count=esm2_param_count)
    config = ESM2Config(**fields)

:func:`maskzoo.core.checkpoint.load_model` applies it to the config of every registered architecture whose
config class is a dataclass (pass ``param_count`` to ``register_architecture`` for the size check).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    ConfigTypeError,
    GrammarParseError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open

T = TypeVar("T")

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "load_config",
    "merge_overrides",
    "parse_overrides",
    "save_config",
    "to_container",
    "to_yaml",
    "validate_config",
]

#: Parameter budget of :func:`validate_config`: 2e11 is 25x LLaDA-8B; anything larger is a corrupt config.
DEFAULT_MAX_PARAMS = 200_000_000_000
#: Largest integer any config field may hold unless ``ranges`` says otherwise (2**31 - 1).
DEFAULT_MAX_INT = 2**31 - 1


def _describe(err: OmegaConfBaseException, source: str) -> str:
    """One line naming the offending key for an omegaconf error raised while merging ``source``."""
    key = getattr(err, "full_key", None) or getattr(err, "key", None)
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)):
        return f"{source}: unknown config key '{key}'"
    if isinstance(err, MissingMandatoryValue):
        return f"{source}: config key '{key}' has no value; set it in the YAML file or with {key}=..."
    if isinstance(err, (ValidationError, ConfigTypeError)):
        where = f" for config key '{key}'" if key else ""
        return f"{source}: bad value{where}: {msg}"
    return f"{source}: {msg}"


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    """Parse ``["a.b=1", "c=x"]`` into a DictConfig; an item without ``=`` is a UserError."""
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise UserError(f"override '{item}' is not of the form key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except (OmegaConfBaseException, GrammarParseError) as e:
        raise UserError(f"cannot parse overrides {list(overrides)}: {str(e).splitlines()[0]}") from None


def _read_yaml(path: str | os.PathLike) -> DictConfig:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        loaded = OmegaConf.load(p)
    except Exception as e:  # yaml.YAMLError and friends: one line is enough
        raise UserError(f"{p}: not a valid YAML config ({str(e).splitlines()[0]})") from None
    # An empty or comment-only file (OmegaConf reads it as {}) is a mistake, never "all defaults".
    if loaded is None or (isinstance(loaded, DictConfig) and len(loaded) == 0):
        raise UserError(f"{p}: the config file is empty (a recipe needs at least one key)")
    if not isinstance(loaded, DictConfig):
        raise UserError(f"{p}: a config file must hold a mapping of keys to values, not a list")
    return loaded


def _structured(schema: Any) -> DictConfig:
    """The schema as a struct-mode DictConfig (unknown keys rejected on merge)."""
    if isinstance(schema, DictConfig):
        base = schema.copy()
    elif isinstance(schema, type) and dataclasses.is_dataclass(schema) or dataclasses.is_dataclass(schema):
        base = OmegaConf.structured(schema)
    else:
        raise TypeError(f"config schema must be a dataclass or DictConfig, got {type(schema).__name__}")
    OmegaConf.set_struct(base, True)
    return base


def merge_overrides(cfg: Any, overrides: Sequence[str] = (), source: str = "overrides") -> DictConfig:
    """Merge dotlist ``overrides`` into ``cfg`` (a dataclass instance/class or DictConfig), validating keys."""
    base = _structured(cfg)
    if overrides:
        try:
            base = OmegaConf.merge(base, parse_overrides(overrides))
        except OmegaConfBaseException as e:
            raise UserError(_describe(e, source)) from None
    return base


def load_config(
    schema_cls: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()
) -> T:
    """Build a config of type ``schema_cls`` from its defaults, an optional YAML file and dotlist overrides.

    Raises UserError for a missing/invalid file, an unknown key, a wrongly typed value or a required value
    (``MISSING``) left unset. Returns an instance of ``schema_cls`` (nested dataclasses are instantiated).
    """
    cfg = _structured(schema_cls)
    if path is not None:
        try:
            cfg = OmegaConf.merge(cfg, _read_yaml(path))
        except OmegaConfBaseException as e:
            raise UserError(_describe(e, str(path))) from None
    cfg = merge_overrides(cfg, overrides, source="command line")
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise UserError(_describe(e, str(path) if path is not None else "config")) from None
    return obj  # type: ignore[return-value]


def to_container(cfg: Any) -> dict:
    """A plain ``dict`` (resolved, enums as names) from a dataclass instance, DictConfig or dict."""
    if isinstance(cfg, dict):
        return dict(cfg)
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.structured(cfg)
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text."""
    return OmegaConf.to_yaml(OmegaConf.create(to_container(cfg)))


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved ``cfg`` (dataclass, DictConfig or dict) as YAML to ``path`` atomically."""
    path = Path(path)
    with atomic_open(path, "w") as f:
        f.write(to_yaml(cfg))
    return path


# ------------------------------------------------------------------------------------------------- validation


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_value(value: Any, hint: Any, where: str, max_int: int) -> None:
    """Raise UserError unless ``value`` (parsed JSON/YAML) fits type ``hint``."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                _check_value(value, option, where, max_int)
                return
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if len(errors) == 1 else f"{where} must be {_type_name(hint)}, got {value!r:.60}")
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r:.60}")
    elif hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{where} must be an integer, got {value!r:.60}")
        if abs(value) > max_int:
            raise UserError(f"{where} = {value} is absurdly large (limit {max_int})")
    elif hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"{where} must be a number, got {value!r:.60}")
        if not math.isfinite(value):
            raise UserError(f"{where} must be finite, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r:.60}")
    elif dataclasses.is_dataclass(hint):
        validate_config(hint, value, source=where, max_int=max_int)
    elif hint in (dict, Mapping) or origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise UserError(f"{where} must be an object, got {value!r:.60}")
        args = typing.get_args(hint)
        for k, v in value.items() if len(args) == 2 else ():
            _check_value(v, args[1], f"{where}.{k}", max_int)
    elif hint in (list, tuple) or origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r:.60}")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) == 1 or (origin is tuple and len(set(args)) == 1 and args):
            for i, v in enumerate(value):
                _check_value(v, args[0], f"{where}[{i}]", max_int)
    # any other annotation (Literal, Enum, a class): left to the config class itself


def validate_config(
    cls: type,
    data: Any,
    source: str,
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    param_count: Callable[[dict[str, Any]], int] | None = None,
    max_params: int = DEFAULT_MAX_PARAMS,
    max_int: int = DEFAULT_MAX_INT,
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """Check untrusted ``data`` against dataclass ``cls`` before anything is built from it; return ``data``.

    Args:
        cls: the config dataclass; its type hints are the schema.
        data: the parsed mapping (from ``config.json``).
        source: where it came from, the start of every message (``"ckpt/config.json: config"``).
        ranges: inclusive ``(low, high)`` bounds for numeric fields.
        param_count: estimate of the parameter count from the fields (defaults filled in).
        max_params: the budget ``param_count`` must stay within.
        max_int: bound on every integer field without a range.
        allow_unknown: keep keys ``cls`` does not know (a foreign format with fields we do not read).
    Raises:
        UserError naming the field: not a mapping, unknown or missing key, wrong type, non-finite number,
        out of range, or an estimated size beyond ``max_params``.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{source}: expected an object of fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown and not allow_unknown:
        raise UserError(f"{source}: unknown field(s) {unknown}; known fields are {sorted(fields)}")
    required = [
        n for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise UserError(f"{source}: missing field(s) {missing}")
    hints = typing.get_type_hints(cls)
    for name in (n for n in fields if n in data):
        where = f"{source}: field '{name}'"
        _check_value(data[name], hints.get(name, Any), where, max_int)
        if ranges and name in ranges and isinstance(data[name], (int, float)) and not isinstance(data[name], bool):
            lo, hi = ranges[name]
            if not lo <= data[name] <= hi:
                raise UserError(f"{where} = {data[name]} is outside [{lo}, {hi}]")
    if param_count is not None:
        filled = {n: f.default for n, f in fields.items() if f.default is not dataclasses.MISSING}
        n_params = param_count({**filled, **{k: v for k, v in data.items() if k in fields}})
        if n_params > max_params:
            raise UserError(
                f"{source}: the fields describe about {n_params:.3g} parameters, beyond the limit of "
                f"{max_params:.3g}{size_hint(data, filled)}"
            )
    return dict(data)


def size_hint(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``"; is field 'x' = N wrong?"`` naming the integer field furthest above its default (or the largest
    integer field): the likely typo behind an absurd size."""
    ints = {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
    if not ints:
        return "; is a size field wrong?"

    def excess(name: str) -> float:
        base = defaults.get(name)
        return ints[name] / base if isinstance(base, int) and not isinstance(base, bool) and base > 0 else ints[name]

    name = max(ints, key=excess)
    return f"; is field '{name}' = {ints[name]} wrong?"
