"""Loading and saving ESM-2 / DSM weights: fair-esm ``.pt`` files and maskzoo directories.

``load_model(path)`` accepts

* a fair-esm ESM-2 checkpoint (``esm2_t6_8M_UR50D.pt`` ...): ``{"model": state_dict, "cfg": {"model": ...},
  ...}`` whose keys carry fair-esm's ``encoder.sentence_encoder.`` / ``encoder.`` prefixes (fair-esm
  ``pretrained._load_model_and_alphabet_core_v2``); a co-located ``*-contact-regression.pt`` is optional and ignored
  (contact prediction is not part of maskzoo);
* a maskzoo directory: ``config.json`` (``"format": "maskzoo"``, ``"architecture": "ESM2"``, ``"config": {...}``)
  + ``model.safetensors``;
* the name of a registered model (the embedded default ``dsm-pdb-small``).

``.pt`` files are read with ``torch.load(weights_only=True)`` under an explicit allow-list (``argparse.Namespace``,
which fairseq-era checkpoints use for their arguments): nothing from a checkpoint is ever executed, and a file
that needs any other class is refused with a one-line error naming it.
"""

from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.model import ESM2, ESM2Config

#: The only non-tensor classes a fair-esm checkpoint may contain.
SAFE_GLOBALS: list[type] = [argparse.Namespace]
_PREFIX = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
_IGNORED_KEYS = re.compile(r"^contact_head\.")  # contact regression weights (not used by maskzoo)
_TIED_KEY = "lm_head.weight"  # same tensor as embed_tokens.weight


def safe_torch_load(path: str | Path) -> object:
    """``torch.load(path, weights_only=True)`` with :data:`SAFE_GLOBALS` allowed; errors become UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).strip().splitlines()
        why = next(
            (ln.strip() for ln in detail if "Unsupported" in ln or "global" in ln.lower()),
            detail[0] if detail else "",
        )
        raise UserError(f"{path}: refused to unpickle checkpoint ({why[:200]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: corrupt or truncated checkpoint ({msg[:200]})") from None


def _cfg_get(cfg: object, key: str) -> object:
    if isinstance(cfg, Mapping):
        return cfg.get(key)
    return getattr(cfg, key, None)


def config_from_fair_esm(data: Mapping, path: Path) -> ESM2Config:
    """Read the ESM-2 architecture from a fair-esm checkpoint's ``cfg["model"]``."""
    cfg = data.get("cfg")
    model_cfg = _cfg_get(cfg, "model") if cfg is not None else None
    if model_cfg is None:
        arch = _cfg_get(data.get("args"), "arch") if data.get("args") is not None else None
        what = f"architecture {arch!r}" if arch else "no cfg['model'] entry"
        raise UserError(f"{path}: not an ESM-2 checkpoint ({what}; only ESM-2 is supported)")
    fields = {
        "num_layers": _cfg_get(model_cfg, "encoder_layers"),
        "embed_dim": _cfg_get(model_cfg, "encoder_embed_dim"),
        "attention_heads": _cfg_get(model_cfg, "encoder_attention_heads"),
    }
    missing = [k for k, v in fields.items() if v is None]
    if missing:
        raise UserError(f"{path}: ESM-2 cfg is missing {', '.join(missing)}")
    td = _cfg_get(model_cfg, "token_dropout")
    try:
        return ESM2Config(
            **{k: int(v) for k, v in fields.items()}, token_dropout=bool(td if td is not None else True)
        )
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: invalid ESM-2 cfg ({e})") from None


def _load_state(model: ESM2, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strict load (tied ``lm_head.weight`` may be absent); mismatches become one UserError line."""
    state = dict(state)
    if _TIED_KEY in state and not torch.equal(
        state[_TIED_KEY], state.get("embed_tokens.weight", state[_TIED_KEY])
    ):
        raise UserError(f"{path}: lm_head.weight differs from embed_tokens.weight (ESM-2 ties them)")
    state.setdefault(_TIED_KEY, state.get("embed_tokens.weight", torch.empty(0)))
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise UserError(f"{path}: entry {k!r} is not a tensor")
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
        raise UserError(f"{path}: weights do not match the ESM-2 config ({'; '.join(parts)})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        line = next(
            (ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0]
        )
        raise UserError(f"{path}: {line[:240]}") from None


def load_fair_esm(path: str | Path) -> ESM2:
    """An :class:`ESM2` from a fair-esm ESM-2 ``.pt`` file (token dropout as in the checkpoint)."""
    path = Path(path)
    data = safe_torch_load(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("model"), Mapping):
        raise UserError(f"{path}: not a fair-esm checkpoint (expected a dict with a 'model' state dict)")
    config = config_from_fair_esm(data, path)
    state = {_PREFIX.sub("", k): v for k, v in data["model"].items()}
    state = {k: v for k, v in state.items() if not _IGNORED_KEYS.match(k)}
    model = ESM2(config)
    _load_state(model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, path)
    return model.eval()


ARCHITECTURE = "ESM2"


def register() -> None:
    """Put ESM-2 on the core's architecture allow-list so ``maskzoo.core.load_model`` reads DSM directories."""
    from maskzoo.core.checkpoint import ARCHITECTURES, register_architecture

    if ARCHITECTURE not in ARCHITECTURES:
        from maskzoo.protein.model import esm2_param_count

        register_architecture(ARCHITECTURE, ESM2, ESM2Config, param_count=esm2_param_count)


def save_dsm(model: ESM2, directory: str | Path, extra: dict | None = None) -> Path:
    """Write a maskzoo directory (``config.json`` + ``model.safetensors``, atomically) via the core's checkpoint
    module; the tied LM-head weight is stored once."""
    from maskzoo.core.checkpoint import save_model

    register()
    return save_model(model, directory, extra=extra)


def load_dsm_dir(directory: str | Path, dtype: torch.dtype | None = torch.float32) -> ESM2:
    """An :class:`ESM2` from a maskzoo directory (weights cast to ``dtype``; float32 by default)."""
    from maskzoo.core.checkpoint import load_model as core_load
    from maskzoo.core.checkpoint import read_config

    register()
    meta = read_config(directory)
    if meta.get("format") != "maskzoo" or meta.get("architecture") != ARCHITECTURE:
        raise UserError(
            f"{directory}: not a DSM/ESM-2 model directory (architecture {meta.get('architecture')!r})"
        )
    model = core_load(directory, dtype=dtype)
    assert isinstance(model, ESM2)
    return model


def load_model(path_or_name: str | Path, device: str | torch.device = "cpu") -> ESM2:
    """Load an ESM-2 / DSM denoiser (eval mode, float32) from a fair-esm ``.pt``, a maskzoo directory, or a
    registered name such as the embedded default."""
    p = Path(path_or_name)
    if p.is_dir():
        model = load_dsm_dir(p)
    elif p.is_file():
        model = load_fair_esm(p)
    else:
        from maskzoo.protein.zoo import protein_model_names, weights_dir

        name = str(path_or_name)
        if name not in protein_model_names():
            raise UserError(
                f"{name}: no such file, directory or protein model name (known: {', '.join(protein_model_names())})"
            )
        model = load_dsm_dir(weights_dir(name))
    return model.to(device).eval()
