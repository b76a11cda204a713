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

Untrusted input is checked before anything is built or allocated:

- ``config.json``: every field of the architecture's config dataclass is type- and range-checked by
  :func:`maskzoo.core.config.validate_config`, and the parameter count the config implies (``param_count`` of
  :func:`register_architecture`) must fit :data:`~maskzoo.core.config.DEFAULT_MAX_PARAMS` and the weights on
  disk (read from the safetensors headers only);
- tensor dtypes: every stored tensor is a float type exactly where the model has a float parameter (integer
  buffers: the same dtype), and of the dtype the config declares when it declares one (``"dtype"``, written by
  :func:`save_model`; ``"torch_dtype"`` in a LLaDA config);
- file names read from a checkpoint (shards of ``model.safetensors.index.json``; package loaders use
  :func:`resolve_inside` for theirs): relative paths that stay inside the checkpoint directory after resolving
  ``..`` and symlinks; anything else is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskzoo.core import llada_format
from maskzoo.core.config import DEFAULT_MAX_PARAMS, size_hint, validate_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

__all__ = [
    "ARCHITECTURES",
    "load_model",
    "read_config",
    "read_weights",
    "register_architecture",
    "resolve_inside",
    "save_model",
    "transformer_param_count",
]

FORMAT = "maskzoo"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

ParamCount = Callable[[dict[str, Any]], int]


def transformer_param_count(cfg: dict[str, Any]) -> int:
    """Parameters of a :class:`DiffusionTransformer` from its config fields (defaults filled in; no allocation).

    embedding V·d (+ V·d untied head) + per layer [q, o: d·h·hd; k, v: d·kv·hd; SwiGLU 3·d·m; 2 norms d] + d.
    """
    v, d, n_layers, h = (int(cfg[k]) for k in ("vocab_size", "d_model", "n_layers", "n_heads"))
    kv = int(cfg.get("n_kv_heads") or h)
    m = int(cfg.get("mlp_hidden") or 64 * -(-8 * d // (3 * 64)))
    hd = d // max(h, 1)
    per_layer = 2 * d * h * hd + 2 * d * kv * hd + 3 * d * m + 2 * d
    return v * d * (1 if cfg.get("tie_embeddings") else 2) + n_layers * per_layer + d


#: Allow-list: architecture name -> (model class, config class with ``from_dict``/``to_dict``).
ARCHITECTURES: dict[str, tuple[type[nn.Module], Any]] = {"DiffusionTransformer": (DiffusionTransformer, TransformerConfig)}
#: Parameter-count estimates from config fields, by architecture (checked before building; optional).
PARAM_COUNTS: dict[str, ParamCount] = {"DiffusionTransformer": transformer_param_count}


def register_architecture(name: str, model_cls: type[nn.Module], config_cls: Any,
                          param_count: ParamCount | None = None) -> None:
    """Add an architecture to the allow-list (from package code, never from a checkpoint).

    ``model_cls(config)`` must build the model; ``config_cls.from_dict(d)`` / ``config.to_dict()`` (de)serialise
    its config. A dataclass ``config_cls`` gets its ``config.json`` fields checked by
    :func:`~maskzoo.core.config.validate_config`; ``param_count(fields) -> int`` adds the size check.
    """
    ARCHITECTURES[name] = (model_cls, config_cls)
    if param_count is not None:
        PARAM_COUNTS[name] = param_count


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
    float_dtypes = {str(p.dtype).removeprefix("torch.") for p in model.state_dict().values() if p.is_floating_point()}
    if len(float_dtypes) == 1:
        meta["dtype"] = float_dtypes.pop()  # checked against the stored tensors on load
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


def resolve_inside(root: str | os.PathLike, relpath: Any, what: str = "file") -> Path:
    """``root / relpath`` if it stays inside ``root`` after resolving ``..`` and symlinks, else UserError.

    For every file name read from a checkpoint (shard names, a tokenizer file in config.json): an absolute path,
    ``../x`` or a symlink pointing out of the checkpoint directory is refused.
    """
    root = Path(root)
    if not isinstance(relpath, str) or not relpath or "\0" in relpath:
        raise UserError(f"{root}: {what} name {relpath!r} is not a file name")
    if os.path.isabs(relpath):
        raise UserError(f"{root}: {what} {relpath!r} is an absolute path; it must be inside the checkpoint directory")
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, relpath))
    if os.path.commonpath([real_root, candidate]) != real_root:
        raise UserError(f"{root}: {what} {relpath!r} points outside the checkpoint directory; refusing to read it")
    return Path(root) / relpath


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file  # noqa: PLC0415

    if not file.is_file():
        raise UserError(f"{file}: weights file is missing")
    try:
        return load_file(str(file))
    except Exception as e:  # SafetensorError, OSError, ... : truncated or corrupt
        raise UserError(f"{file}: {_corrupt(e)}") from None


def _corrupt(e: Exception) -> str:
    return f"corrupt or truncated safetensors file ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"


def _weight_files(path: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The safetensors files of a checkpoint dir and, when sharded, the index's tensor -> shard map."""
    index = path / INDEX_FILE
    if (path / WEIGHTS_FILE).is_file() or not index.is_file():
        return [path / WEIGHTS_FILE], None
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{index}: not a valid safetensors index ({e})") from None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{index}: 'weight_map' must be a non-empty object of tensor name -> shard file")
    shards = {shard: resolve_inside(path, shard, "shard") for shard in weight_map.values()}
    return [shards[s] for s in sorted(shards)], weight_map


def _headers(files: list[Path]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """tensor name -> (safetensors dtype, shape) from the file headers only (nothing is loaded)."""
    from safetensors import safe_open  # noqa: PLC0415

    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for file in files:
        if not file.is_file():
            raise UserError(f"{file}: weights file is missing")
        try:
            with safe_open(str(file), framework="pt") as f:
                for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    sl = f.get_slice(k)
                    out[k] = (sl.get_dtype(), tuple(sl.get_shape()))
        except Exception as e:  # SafetensorError, OSError
            raise UserError(f"{file}: {_corrupt(e)}") from None
    return out


_FLOAT_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def _check_stored(path: Path, headers: dict[str, tuple[str, tuple[int, ...]]], declared: Any,
                  n_params: int | None, hint: str = "; is a size field wrong?") -> None:
    """Weights on disk against the config: one float dtype (the declared one, if any), and a size that matches
    the parameter count the config implies (so an absurd config fails before the model is built)."""
    floats = {_FLOAT_DTYPES[dt] for dt, _ in headers.values() if dt in _FLOAT_DTYPES}
    if declared is not None:
        want = str(declared).removeprefix("torch.")
        if want not in _FLOAT_DTYPES.values():
            raise UserError(f"{path / CONFIG_FILE}: dtype {declared!r} is not one of {sorted(_FLOAT_DTYPES.values())}")
        if floats - {want}:
            raise UserError(f"{path}: tensors are stored as {sorted(floats - {want})[0]} but config.json declares {want}")
    if n_params is not None:
        stored = sum(_prod(shape) for _, shape in headers.values())
        if n_params > 2 * stored + 1_000_000:  # slack for buffers/tied copies; the strict load checks exactly
            raise UserError(
                f"{path / CONFIG_FILE}: the config describes about {n_params:.3g} parameters but the weights hold "
                f"{stored:.3g}{hint}"
            )


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of checkpoint dir ``path``: ``model.safetensors`` or the shards its index names (each must be
    inside ``path``); a missing, corrupt or escaping file is a UserError."""
    path = Path(path)
    files, weight_map = _weight_files(path)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(_read_safetensors(file))
    if weight_map is not None:
        absent = sorted(set(weight_map) - set(state))
        if absent:
            raise UserError(f"{path / INDEX_FILE}: tensors listed but not found in the shards: {_names(absent)}")
    return state


_read_weights = read_weights  # the name loaders in this module used


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
        if v.is_floating_point() != expected[k].is_floating_point() or (
            not v.is_floating_point() and v.dtype != expected[k].dtype
        ):
            raise UserError(f"{source}: tensor {k} is stored as {v.dtype}, the model needs {expected[k].dtype}")
    # float tensors: any float dtype (cast below); the config's declared dtype was checked from the headers
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
    n_params = None
    if dataclasses.is_dataclass(config_cls):
        count = PARAM_COUNTS.get(arch)
        validate_config(config_cls, meta["config"], f"{path / CONFIG_FILE}: config", param_count=count)
        n_params = count(_with_defaults(config_cls, meta["config"])) if count else None
    files, _ = _weight_files(path)
    defaults = _with_defaults(config_cls, {}) if dataclasses.is_dataclass(config_cls) else {}
    _check_stored(path, _headers(files), meta.get("dtype"), n_params, size_hint(meta["config"], defaults))
    model = build_empty(model_cls, config_cls.from_dict(meta["config"]))
    load_state_strict(model, _read_weights(path), path, dtype)
    model.checkpoint_extra = dict(meta.get("extra") or {})
    return model


def _with_defaults(config_cls: Any, d: dict[str, Any]) -> dict[str, Any]:
    filled = {f.name: f.default for f in dataclasses.fields(config_cls) if f.default is not dataclasses.MISSING}
    return {**filled, **d}


@dataclasses.dataclass
class _LLaDAFields:
    """The fields of a published LLaDA config.json that :func:`llada_format.config_from_llada` reads (for
    :func:`validate_config`; the file's other fields are not ours to check)."""

    d_model: int
    n_heads: int
    n_layers: int
    n_kv_heads: int | None = None
    multi_query_attention: bool | None = None
    mlp_hidden_size: int | None = None
    mlp_ratio: float | None = None
    embedding_size: int | None = None
    vocab_size: int | None = None
    mask_token_id: int | None = None
    max_sequence_length: int | None = None
    rope_theta: float | None = None
    rms_norm_eps: float | None = None
    weight_tying: bool | None = None
    torch_dtype: str | None = None


def _load_llada(path: Path, meta: dict[str, Any], dtype: torch.dtype | None) -> nn.Module:
    source = f"{path / CONFIG_FILE}"
    validate_config(_LLaDAFields, meta, source, allow_unknown=True)
    config = llada_format.config_from_llada(meta)
    n_params = transformer_param_count(config.to_dict())
    if n_params > DEFAULT_MAX_PARAMS:
        raise UserError(f"{source}: the fields describe about {n_params:.3g} parameters, beyond the limit of "
                        f"{DEFAULT_MAX_PARAMS:.3g}; is a size field wrong?")
    files, _ = _weight_files(path)
    _check_stored(path, _headers(files), meta.get("torch_dtype"), n_params)
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
