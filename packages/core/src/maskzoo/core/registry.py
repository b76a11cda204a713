"""The model zoo: named entries with a builder, a default config, embedded weights and a model card (timm-like).

Packages register their embedded defaults in a function named by an entry point of the group
``maskzoo.models``, e.g. in ``pyproject.toml``::

    [project.entry-points."maskzoo.models"]
    text = "maskzoo.core.text.zoo:register"

The registry loads those entry points lazily, the first time a name is looked up or listed, so
``load_model("text-char-shakespeare")`` works without importing the package first. An entry point may also
name a module whose import registers its models.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskzoo.core.errors import UserError

__all__ = ["ENTRY_POINT_GROUP", "ModelEntry", "create_model", "discover", "embedded_config", "get_entry", "has_model",
           "list_models", "register_model"]

ENTRY_POINT_GROUP = "maskzoo.models"
log = logging.getLogger(__name__)


def _default_builder(config: dict[str, Any]) -> nn.Module:
    from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig  # noqa: PLC0415

    return DiffusionTransformer(TransformerConfig.from_dict(config))


@dataclass(frozen=True)
class ModelEntry:
    """One zoo entry.

    Attributes:
        name: registry name, e.g. ``"text-char-shakespeare"``.
        builder: ``builder(config_dict) -> nn.Module`` for an untrained model (default: DiffusionTransformer).
        default_config: the config dict the builder gets with ``pretrained=False``.
        weights_dir: checkpoint directory shipped as package data (loaded with ``pretrained=True``).
        card: path of the MODEL_CARD.md.
        description: one line for listings.
        tags: free labels (modality, size, ...), e.g. for test parametrisation.
    """

    name: str
    builder: Callable[[dict[str, Any]], nn.Module] = _default_builder
    default_config: dict[str, Any] = field(default_factory=dict)
    weights_dir: Path | None = None
    card: Path | None = None
    description: str = ""
    tags: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelEntry] = {}
_discovered = False  # every entry point has run
_loaded: set[str] = set()  # entry points (module:attr) already run


def register_model(
    name: str,
    builder: Callable[[dict[str, Any]], nn.Module] | None = None,
    default_config: dict[str, Any] | None = None,
    weights_dir: str | os.PathLike | None = None,
    card: str | os.PathLike | None = None,
    *,
    description: str = "",
    tags: tuple[str, ...] = (),
    overwrite: bool = False,
) -> ModelEntry:
    """Add a zoo entry. Registering the same entry again is a no-op; a different one under a taken name is an
    error unless ``overwrite``."""
    entry = ModelEntry(
        name=name,
        builder=builder or _default_builder,
        default_config=dict(default_config or {}),
        weights_dir=Path(weights_dir) if weights_dir is not None else None,
        card=Path(card) if card is not None else None,
        description=description,
        tags=tuple(tags),
    )
    if name in _REGISTRY and _REGISTRY[name] != entry and not overwrite:
        raise ValueError(f"model {name!r} is already registered with different settings")
    _REGISTRY[name] = entry
    return entry


def embedded_config(weights_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config`` of the checkpoint in ``weights_dir`` (its ``config.json``), or ``{}`` when there is none yet
    (a package installed before its model was trained): a zoo entry's default config is its shipped model's."""
    from maskzoo.core.checkpoint import CONFIG_FILE, read_config  # noqa: PLC0415

    return read_config(weights_dir)["config"] if (Path(weights_dir) / CONFIG_FILE).is_file() else {}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``maskzoo.models`` entry points, the core's own first (a core name needs no modality import)."""
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(eps, key=lambda ep: (not ep.value.startswith("maskzoo.core."), ep.name))


def discover(until: str | None = None) -> None:
    """Run the ``maskzoo.models`` entry points, each once (lazily); with ``until``, stop as soon as a model of
    that name is registered, so looking up one package's model does not import every other package."""
    global _discovered
    if _discovered:
        return
    for ep in _entry_points():
        if until is not None and until in _REGISTRY:
            return
        if ep.value in _loaded:
            continue
        _loaded.add(ep.value)
        try:
            obj = ep.load()
        except Exception as e:  # a broken optional package must not break the others
            log.warning("maskzoo: could not load model entry point %s (%s)", ep.value, e)
            continue
        if callable(obj):
            obj()
    _discovered = True


def list_models() -> list[str]:
    """Sorted names of all registered models (including installed packages' entries)."""
    discover()
    return sorted(_REGISTRY)


def has_model(name: str) -> bool:
    if name not in _REGISTRY:
        discover(until=name)
    return name in _REGISTRY


def get_entry(name: str) -> ModelEntry:
    """The entry called ``name``; UserError naming the known models otherwise."""
    if not has_model(name):
        known = ", ".join(list_models()) or "none installed"
        raise UserError(f"unknown model name {name!r}; known models: {known}")
    return _REGISTRY[name]


def create_model(
    name: str,
    pretrained: bool = True,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    **config_overrides: Any,
) -> nn.Module:
    """Build zoo model ``name``: its embedded weights (``pretrained=True``) or a fresh, randomly initialised
    model from its default config with ``config_overrides`` applied."""
    entry = get_entry(name)
    if pretrained:
        if config_overrides:
            raise ValueError("config overrides only apply with pretrained=False")
        if entry.weights_dir is None:
            raise UserError(f"model {name!r} has no embedded weights; use pretrained=False")
        if not entry.weights_dir.is_dir():
            raise UserError(f"model {name!r}: embedded weights are missing at {entry.weights_dir}")
        from maskzoo.core.checkpoint import load_model  # noqa: PLC0415

        return load_model(entry.weights_dir, device=device, dtype=dtype)
    model = entry.builder({**entry.default_config, **config_overrides})
    return model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
