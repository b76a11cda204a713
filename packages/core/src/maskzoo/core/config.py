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
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
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

__all__ = ["load_config", "save_config", "to_yaml", "to_container", "parse_overrides", "merge_overrides"]


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
    if loaded is None:
        return OmegaConf.create({})
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
