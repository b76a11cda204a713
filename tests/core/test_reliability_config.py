"""Untrusted checkpoints: every config.json field, tensor dtype and file name is checked before anything is built.

Property tests generate wrong types, absurd sizes and hostile shard names; each must end in a one-line
UserError (never another exception, never a long allocation).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from maskzoo.core.checkpoint import load_model, resolve_inside, save_model, transformer_param_count
from maskzoo.core.config import validate_config
from maskzoo.core.errors import UserError
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

V = 30
CONFIG = dict(vocab_size=V, d_model=16, n_layers=2, n_heads=2, max_seq_len=32, mask_token_id=V - 1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "m"
    save_model(DiffusionTransformer(TransformerConfig(**CONFIG)), path)
    return path


@pytest.fixture
def ckpt(saved, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(saved, dst)
    return dst


def _edit(path, **fields):
    meta = json.loads((path / "config.json").read_text())
    meta["config"].update(fields)
    for k in [k for k, v in fields.items() if v is _DROP]:
        del meta["config"][k]
    (path / "config.json").write_text(json.dumps(meta))


_DROP = object()


def test_param_count_matches_the_built_model():
    for kw in [{}, {"tie_embeddings": True}, {"n_kv_heads": 1}, {"mlp_hidden": 40}, {"d_model": 64, "n_heads": 4}]:
        cfg = TransformerConfig(**{**CONFIG, **kw})
        n = sum(p.numel() for p in DiffusionTransformer(cfg).parameters())
        assert transformer_param_count(cfg.to_dict()) == n, kw


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"n_layers": "2"}, r"field 'n_layers' must be an integer"),
        ({"n_layers": 2.0}, r"field 'n_layers' must be an integer"),
        ({"causal": "no"}, r"field 'causal' must be true or false"),
        ({"rope_theta": "big"}, r"field 'rope_theta' must be a number"),
        ({"norm_eps": float("nan")}, r"field 'norm_eps' must be finite"),
        ({"attention_backend": 3}, r"field 'attention_backend' must be a string"),
        ({"vocab_size": _DROP}, r"missing field\(s\) \['vocab_size'\]"),
        ({"n_layers": 10**9}, r"parameters, beyond the limit .*field .n_layers. = 1000000000 wrong"),
        ({"n_layers": 10**12}, r"field 'n_layers' = 1000000000000 is absurdly large"),
        ({"vocab_size": 10**8, "d_model": 4096, "n_heads": 32}, r"parameters, beyond the limit"),
        ({"n_layers": 100_000}, r"weights hold"),  # small enough for the budget, not for the file
        ({"n_layers": 0}, r"n_layers must be >= 1"),
    ],
)
def test_bad_config_fields_are_named_before_anything_is_built(ckpt, fields, match):
    _edit(ckpt, **fields)
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=match):
        load_model(ckpt)
    assert time.perf_counter() - t0 < 5


def test_config_must_be_an_object(ckpt):
    meta = json.loads((ckpt / "config.json").read_text())
    meta["config"] = [1, 2]
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="'config' object"):
        load_model(ckpt)


def test_tensor_dtypes_are_checked(ckpt):
    state = load_file(str(ckpt / "model.safetensors"))
    name = next(iter(state))
    save_file({**state, name: state[name].to(torch.int32)}, str(ckpt / "model.safetensors"))
    with pytest.raises(UserError, match=rf"tensor {name} is stored as torch.int32"):
        load_model(ckpt)
    save_file({k: v.half() for k, v in state.items()}, str(ckpt / "model.safetensors"))
    with pytest.raises(UserError, match="stored as float16 but config.json declares float32"):
        load_model(ckpt)
    meta = json.loads((ckpt / "config.json").read_text())
    meta["dtype"] = "float16"
    (ckpt / "config.json").write_text(json.dumps(meta))
    assert next(load_model(ckpt).parameters()).dtype == torch.float16


def _shard(ckpt, names: list[str]) -> None:
    """Split model.safetensors into shards named ``names`` (relative to ``ckpt``) plus an index."""
    state = load_file(str(ckpt / "model.safetensors"))
    keys = sorted(state)
    weight_map = {}
    for i, name in enumerate(names):
        part = {k: state[k] for k in keys[i :: len(names)]}
        target = ckpt / name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(part, str(target))
        weight_map.update({k: name for k in part})
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_sharded_checkpoint_inside_the_directory_loads(ckpt, saved):
    _shard(ckpt, ["a.safetensors", "sub/b.safetensors"])
    ids = torch.tensor([[1, 2, V - 1]])
    with torch.no_grad():
        assert torch.equal(load_model(ckpt)(ids), load_model(saved)(ids))


@pytest.mark.parametrize("escape", ["../outside.safetensors", "sub/../../outside.safetensors", "ABS", "LINK"])
def test_shards_outside_the_checkpoint_are_refused(ckpt, escape):
    outside = ckpt.parent / "outside.safetensors"
    if escape == "ABS":
        escape = str(outside)
    if escape == "LINK":
        (ckpt / "link").symlink_to(ckpt.parent)
        escape = "link/outside.safetensors"
    _shard(ckpt, ["a.safetensors", escape])
    assert outside.is_file()
    with pytest.raises(UserError, match="outside the checkpoint directory|absolute path"):
        load_model(ckpt)


@settings(max_examples=60, deadline=None)
@given(rel=st.one_of(
    st.text(alphabet="./ab\\", min_size=1, max_size=12),
    st.lists(st.sampled_from(["..", ".", "a", "b", ""]), min_size=1, max_size=6).map("/".join),
))
def test_property_resolve_inside_never_escapes(tmp_path_factory, rel):
    root = tmp_path_factory.mktemp("root")
    try:
        p = resolve_inside(root, rel)
    except UserError:
        return
    real = os.path.realpath(p)
    assert os.path.commonpath([os.path.realpath(root), real]) == os.path.realpath(root)


_BAD_VALUES = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**40), max_value=2**40), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_FIELDS = [f for f in TransformerConfig.__dataclass_fields__]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _BAD_VALUES, min_size=1, max_size=3))
def test_property_any_config_edit_loads_or_fails_with_one_line(saved, tmp_path_factory, changes):
    """Any mix of wrong values in config.json: the model loads (the values happen to be valid) or a one-line
    UserError comes back quickly; never another exception."""
    ckpt = tmp_path_factory.mktemp("c") / "m"
    shutil.copytree(saved, ckpt)
    _edit(ckpt, **changes)
    t0 = time.perf_counter()
    try:
        load_model(ckpt)
    except UserError as e:
        assert "\n" not in str(e) and len(str(e)) < 600
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- validate_config for other packages


@dataclass
class Tower:
    width: int = 8
    names: list[str] = field(default_factory=list)


@dataclass
class Model:
    layers: int
    tower: Tower = field(default_factory=Tower)
    dropout: float = 0.0
    extra: dict[str, int] | None = None


@pytest.mark.parametrize(
    "data, match",
    [
        ({"layers": 2, "tower": {"width": "8"}}, r"cfg: field 'tower': field 'width' must be an integer"),
        ({"layers": 2, "tower": {"names": ["a", 3]}}, r"field 'names'\[1\] must be a string"),
        ({"layers": 2, "extra": {"k": "v"}}, r"field 'extra'.k must be an integer"),
        ({"layers": 2, "dropout": 2.0}, r"field 'dropout' = 2.0 is outside \[0, 1\]"),
        ({"layers": True}, r"field 'layers' must be an integer"),
        ({"layers": 10**6}, r"about 1e\+06 parameters, beyond the limit"),
        ([], "expected an object"),
    ],
)
def test_validate_config_names_nested_fields(data, match):
    with pytest.raises(UserError, match=match):
        validate_config(Model, data, "cfg", ranges={"dropout": (0, 1)}, param_count=lambda d: d["layers"],
                        max_params=1000)


def test_validate_config_accepts_good_and_unknown_when_allowed():
    good = {"layers": 2, "tower": {"width": 4, "names": ["x"]}, "dropout": 0.1, "extra": None}
    assert validate_config(Model, good, "cfg") == good
    with pytest.raises(UserError, match=r"unknown field\(s\) \['zzz'\]"):
        validate_config(Model, {**good, "zzz": 1}, "cfg")
    assert validate_config(Model, {**good, "zzz": 1}, "cfg", allow_unknown=True)["zzz"] == 1


# --------------------------------------------------------------------------------------------- published LLaDA


LLADA_DIR = Path(__file__).parent / "fixtures" / "llada" / "llada_tiny"


@pytest.fixture
def llada(tmp_path):
    dst = tmp_path / "llada"
    shutil.copytree(LLADA_DIR, dst)
    return dst


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"n_layers": "2"}, r"field 'n_layers' must be an integer"),
        ({"rope_theta": None, "d_model": 64.5}, r"field 'd_model' must be an integer"),
        ({"rms_norm_eps": float("inf")}, r"field 'rms_norm_eps' must be finite"),
        ({"weight_tying": "false"}, r"field 'weight_tying' must be true or false"),
        ({"n_layers": 10**9}, r"parameters, beyond the limit"),
        ({"embedding_size": 10**9, "vocab_size": 10**9}, r"1.28e\+11 parameters"),
        ({"n_layers": 1000}, r"weights hold"),
        ({"torch_dtype": "bfloat16"}, r"stored as float32 but config.json declares bfloat16"),
        ({"torch_dtype": "int8"}, r"dtype 'int8' is not one of"),
    ],
)
def test_published_llada_config_fields_are_checked(llada, fields, match):
    meta = json.loads((llada / "config.json").read_text())
    meta.update(fields)
    (llada / "config.json").write_text(json.dumps(meta))
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=match):
        load_model(llada)
    assert time.perf_counter() - t0 < 5


def test_published_llada_with_its_declared_dtype_loads(llada):
    meta = json.loads((llada / "config.json").read_text())
    meta["torch_dtype"] = "float32"
    (llada / "config.json").write_text(json.dumps(meta))
    assert next(load_model(llada).parameters()).dtype == torch.float32
