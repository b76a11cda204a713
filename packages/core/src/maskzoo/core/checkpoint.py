"""Saving and loading models: checkpoints are data (a JSON config + safetensors), never code.

The maskzoo format is a directory::

    config.json        {"format": "maskzoo", "format_version": 1, "architecture": "DiffusionTransformer",
                        "config": {...TransformerConfig fields...}, "extra": {...optional metadata...}}
    model.safetensors  the state dict (a tied output head is stored once, under the embedding's name)

:func:`load_model` accepts such a directory, a directory in the published LLaDA layout
(``"model_type": "llada"``, see :mod:`maskzoo.core.llada_format`; single file or sharded with
``model.safetensors.index.json``), or a name from :mod:`maskzoo.core.registry`. Architectures are looked up in
an explicit allow-list (:data:`ARCHITECTURES`); ``auto_map`` and any code shipped beside the weights are ignored.
Loading is strict: missing or unexpected tensors, wrong shapes, a truncated file -> :class:`UserError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskzoo.core import llada_format
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

__all__ = ["ARCHITECTURES", "load_model", "read_config", "register_architecture", "save_model"]

FORMAT = "maskzoo"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

#: Allow-list: architecture name -> (model class, config class with ``from_dict``/``to_dict``).
ARCHITECTURES: dict[str, tuple[type[nn.Module], Any]] = {"DiffusionTransformer": (DiffusionTransformer, TransformerConfig)}


def register_architecture(name: str, model_cls: type[nn.Module], config_cls: Any) -> None:
    """Add an architecture to the allow-list (from package code, never from a checkpoint).

    ``model_cls(config)`` must build the model; ``config_cls.from_dict(d)`` / ``config.to_dict()`` (de)serialise
    its config.
    """
    ARCHITECTURES[name] = (model_cls, config_cls)


def _architecture_name(model: nn.Module) -> str:
    for name, (cls, _) in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a registered architecture; call register_architecture first")


# ------------------------------------------------------------------------------------------------- save


def save_model(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to directory ``path`` in the maskzoo format, atomically (all or nothing).

    ``extra`` is free JSON metadata (tokenizer, training summary, ...) returned by :func:`read_config`.
    """
    from safetensors.torch import save_file  # noqa: PLC0415

    arch = _architecture_name(model)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": arch,
        "config": model.config.to_dict(),
    }
    if extra:
        meta["extra"] = extra
    state: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tensor.numel())
        if tensor.numel() and key in seen:  # a tied tensor is stored once
            continue
        seen.add(key)
        state[name] = tensor.detach().contiguous().cpu()
    path = Path(path)
    with atomic_dir(path) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- load


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of checkpoint directory ``path`` (UserError if absent or not JSON)."""
    path = Path(path)
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        raise UserError(f"{path}: not a model checkpoint (no {CONFIG_FILE})")
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{cfg_file}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{cfg_file}: expected a JSON object")
    return cfg


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file  # noqa: PLC0415

    if not file.is_file():
        raise UserError(f"{file}: weights file is missing")
    try:
        return load_file(str(file))
    except Exception as e:  # SafetensorError, OSError, ... : truncated or corrupt
        raise UserError(f"{file}: corrupt or truncated safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint dir: ``model.safetensors`` or the shards named by the index."""
    index = path / INDEX_FILE
    if not (path / WEIGHTS_FILE).is_file() and index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"{index}: not a valid safetensors index ({e})") from None
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            part = _read_safetensors(path / shard)
            state.update(part)
        absent = sorted(set(weight_map) - set(state))
        if absent:
            raise UserError(f"{index}: tensors listed but not found in the shards: {_names(absent)}")
        return state
    return _read_safetensors(path / WEIGHTS_FILE)


def _names(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _tied_groups(model: nn.Module) -> list[list[str]]:
    """Names sharing one Parameter (e.g. a tied embedding and output head), first name first."""
    groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def _retie(model: nn.Module, groups: list[list[str]]) -> None:
    """Make every alias point at the first name's Parameter again (``assign=True`` replaced them)."""
    for first, *aliases in groups:
        src = model.get_parameter(first)
        for alias in aliases:
            owner, _, leaf = alias.rpartition(".")
            setattr(model.get_submodule(owner) if owner else model, leaf, src)


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path,
                      dtype: torch.dtype | None = None) -> None:
    """Strict loading: every parameter present with the right shape, nothing else. Tied parameters are stored
    once, under the first name of the tie (state-dict order), as :func:`save_model` writes them."""
    expected = model.state_dict()
    groups = _tied_groups(model)
    optional = {alias for g in groups for alias in g[1:]}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors: {_names(unexpected)}")
        raise UserError(f"{source}: weights do not match the config ({'; '.join(parts)})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise UserError(f"{source}: tensor {k} has shape {tuple(v.shape)}, the config needs {tuple(expected[k].shape)}")
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=False, assign=True)
    _retie(model, groups)


def build_empty(model_cls: type[nn.Module], config: Any) -> nn.Module:
    """Instantiate without allocating/initialising weights (they are all overwritten by the checkpoint)."""
    with torch.device("meta"):
        return model_cls(config)


def _load_maskzoo(path: Path, meta: dict[str, Any], dtype: torch.dtype | None) -> nn.Module:
    arch = meta.get("architecture")
    if arch not in ARCHITECTURES:
        from maskzoo.core import registry  # noqa: PLC0415 (registry imports this module)

        registry.discover()  # installed packages register their architectures from their entry points
    if arch not in ARCHITECTURES:
        raise UserError(f"{path}: unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path}: maskzoo format version {version!r} is newer than this maskzoo supports")
    model_cls, config_cls = ARCHITECTURES[arch]
    if not isinstance(meta.get("config"), dict):
        raise UserError(f"{path / CONFIG_FILE}: missing the 'config' object")
    model = build_empty(model_cls, config_cls.from_dict(meta["config"]))
    load_state_strict(model, _read_weights(path), path, dtype)
    model.checkpoint_extra = dict(meta.get("extra") or {})
    return model


def _load_llada(path: Path, meta: dict[str, Any], dtype: torch.dtype | None) -> nn.Module:
    config = llada_format.config_from_llada(meta)
    model = build_empty(DiffusionTransformer, config)
    state: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in _read_weights(path).items():
        ours = llada_format.key_from_llada(key)
        if ours is None:
            unknown.append(key)
        else:
            state[ours] = tensor
    if unknown:
        raise UserError(f"{path}: unexpected tensors in a LLaDA checkpoint: {_names(sorted(unknown))}")
    load_state_strict(model, state, path, dtype)
    model.checkpoint_extra = {"source_format": "llada"}
    return model


Loader = Callable[[Path, dict[str, Any], torch.dtype | None], nn.Module]
_FORMATS: dict[str, Loader] = {"maskzoo": _load_maskzoo, "llada": _load_llada}


def _format_of(meta: dict[str, Any]) -> str | None:
    if meta.get("format") == FORMAT:
        return "maskzoo"
    if llada_format.is_llada_config(meta):
        return "llada"
    return None


def load_model(
    path_or_name: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Load a model in eval mode from a checkpoint directory or a registry name.

    Args:
        path_or_name: a maskzoo checkpoint dir, a published LLaDA dir, or a name from ``list_models()``.
        device: where to put the model.
        dtype: cast floating-point weights (default: as stored).
    """
    path = Path(path_or_name)
    if not path.exists():
        from maskzoo.core import registry  # noqa: PLC0415 (registry imports this module)

        if registry.has_model(str(path_or_name)):
            return registry.create_model(str(path_or_name), pretrained=True, device=device, dtype=dtype)
        known = registry.list_models()
        hint = f"; known model names: {', '.join(known)}" if known else ""
        raise UserError(f"no such checkpoint directory or model name: {str(path_or_name)!r}{hint}")
    if not path.is_dir():
        raise UserError(f"{path}: a checkpoint is a directory with {CONFIG_FILE}, not a file")
    meta = read_config(path)
    fmt = _format_of(meta)
    if fmt is None:
        raise UserError(f"{path / CONFIG_FILE}: unknown checkpoint format (expected 'format': 'maskzoo' or 'model_type': 'llada')")
    model = _FORMATS[fmt](path, meta, dtype)
    return model.to(device).eval()
