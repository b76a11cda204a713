"""save_model / load_model round trips, strictness and clear errors; the registry and its entry points."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import maskzoo.core.checkpoint as ckpt
from maskzoo.core import registry
from maskzoo.core.checkpoint import load_model, read_config, save_model
from maskzoo.core.errors import UserError
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

V = 30
CONFIG = dict(vocab_size=V, d_model=16, n_layers=2, n_heads=2, max_seq_len=32, mask_token_id=V - 1)


def _model(seed: int = 0, **kw) -> DiffusionTransformer:
    torch.manual_seed(seed)
    return DiffusionTransformer(TransformerConfig(**{**CONFIG, **kw})).eval()


IDS = torch.tensor([[1, 2, 3, V - 1, 5], [7, V - 1, V - 1, 8, 9]])


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": True}, {"n_kv_heads": 1}, {"causal": True}])
def test_round_trip_is_exact(tmp_path, kw):
    m = _model(**kw)
    save_model(m, tmp_path / "m", extra={"tokenizer": {"kind": "char"}, "steps": 3})
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["format"] == "maskzoo" and meta["architecture"] == "DiffusionTransformer"
    assert meta["config"] == m.config.to_dict()
    assert read_config(tmp_path / "m")["extra"]["steps"] == 3
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    assert loaded.checkpoint_extra == {"tokenizer": {"kind": "char"}, "steps": 3}
    with torch.no_grad():
        assert torch.equal(loaded(IDS), m(IDS))
    if kw.get("tie_embeddings"):
        assert loaded.lm_head.weight is loaded.embed.weight
        assert "lm_head.weight" not in _stored_keys(tmp_path / "m")


def _stored_keys(path):
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_dtype_and_device_arguments(tmp_path):
    save_model(_model(), tmp_path / "m")
    m = load_model(tmp_path / "m", device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    assert m(IDS).dtype == torch.bfloat16


def test_save_replaces_atomically_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    save_model(_model(seed=0), tmp_path / "m")
    save_model(_model(seed=1), tmp_path / "m")  # overwrite
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m")(IDS), _model(seed=1)(IDS))

    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        save_model(_model(seed=2), tmp_path / "new")
    with pytest.raises(OSError):
        save_model(_model(seed=2), tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no partial output, old one intact
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m")(IDS), _model(seed=1)(IDS))


@pytest.fixture
def saved(tmp_path):
    save_model(_model(), tmp_path / "m")
    return tmp_path / "m"


def _edit_config(path, **changes):
    meta = json.loads((path / "config.json").read_text())
    for k, v in changes.items():
        if k == "config":
            meta["config"].update(v)
        else:
            meta[k] = v
    (path / "config.json").write_text(json.dumps(meta))


def test_unknown_path_or_name(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint directory or model name: 'nope-model'"):
        load_model("nope-model")
    with pytest.raises(UserError, match="not a model checkpoint"):
        load_model(tmp_path)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="not a file"):
        load_model(tmp_path / "file.bin")


def test_missing_and_corrupt_files(saved):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt or truncated safetensors"):
        load_model(saved)
    weights.write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="corrupt or truncated safetensors"):
        load_model(saved)
    weights.unlink()
    with pytest.raises(UserError, match="weights file is missing"):
        load_model(saved)
    (saved / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_model(saved)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"format": "other"}, "unknown checkpoint format"),
        ({"architecture": "os.system"}, "unknown architecture 'os.system'"),
        ({"format_version": 99}, "newer than"),
        ({"config": {"n_layer": 3}}, r"unknown field\(s\) \['n_layer'\]"),
        ({"config": {"n_layers": 3}}, r"missing tensors: blocks\.2\."),
        ({"config": {"n_layers": 1}}, r"unexpected tensors: blocks\.1\."),
        ({"config": {"d_model": 32, "mlp_hidden": 48}}, "has shape"),
        ({"config": {"mask_token_id": 99}}, "outside the vocabulary"),
    ],
)
def test_config_errors_name_the_problem(saved, changes, match):
    _edit_config(saved, **changes)
    with pytest.raises(UserError, match=match):
        load_model(saved)


def test_tied_weights_inside_a_wrapper_round_trip(tmp_path, monkeypatch):
    """A registered wrapper around a tied DiffusionTransformer: stored once, re-tied on load, same logits."""

    class Wrapper(torch.nn.Module):
        def __init__(self, config: TransformerConfig) -> None:
            super().__init__()
            self.config = config
            self.lm = DiffusionTransformer(config)

        def forward(self, ids):
            return self.lm(ids)

    monkeypatch.setitem(ckpt.ARCHITECTURES, "Wrapper", (Wrapper, TransformerConfig))
    torch.manual_seed(0)
    w = Wrapper(TransformerConfig(**{**CONFIG, "tie_embeddings": True})).eval()
    save_model(w, tmp_path / "w")
    assert "lm.lm_head.weight" not in _stored_keys(tmp_path / "w")
    loaded = load_model(tmp_path / "w")
    assert loaded.lm.lm_head.weight is loaded.lm.embed.weight
    with torch.no_grad():
        assert torch.equal(loaded(IDS), w(IDS))


def test_register_architecture_allow_list(tmp_path, monkeypatch):
    class Wrapped(DiffusionTransformer):
        pass

    with pytest.raises(TypeError, match="not a registered architecture"):
        save_model(Wrapped(TransformerConfig(**CONFIG)), tmp_path / "w")
    monkeypatch.setitem(ckpt.ARCHITECTURES, "Wrapped", (Wrapped, TransformerConfig))
    save_model(Wrapped(TransformerConfig(**CONFIG)), tmp_path / "w")
    assert type(load_model(tmp_path / "w")) is Wrapped


# ------------------------------------------------------------------------------------------- registry


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "_loaded", set())
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])


def test_registry_create_and_load_by_name(tmp_path, clean_registry):
    m = _model()
    save_model(m, tmp_path / "weights")
    (tmp_path / "CARD.md").write_text("# tiny\n")
    registry.register_model("tiny-test", default_config=CONFIG, weights_dir=tmp_path / "weights", card=tmp_path / "CARD.md")
    registry.register_model("tiny-test", default_config=CONFIG, weights_dir=tmp_path / "weights", card=tmp_path / "CARD.md")
    assert registry.list_models() == ["tiny-test"]
    with torch.no_grad():
        assert torch.equal(load_model("tiny-test")(IDS), m(IDS))
        assert torch.equal(registry.create_model("tiny-test")(IDS), m(IDS))
    fresh = registry.create_model("tiny-test", pretrained=False, n_layers=1)
    assert fresh.config.n_layers == 1 and fresh.training
    assert registry.get_entry("tiny-test").card.read_text() == "# tiny\n"
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("tiny-test", default_config={**CONFIG, "n_layers": 5})
    registry.register_model("no-weights", default_config=CONFIG)
    with pytest.raises(UserError, match="no embedded weights"):
        load_model("no-weights")
    with pytest.raises(UserError, match="unknown model name 'nope'; known models: no-weights, tiny-test"):
        registry.create_model("nope")


def test_registry_discovers_entry_points_lazily(tmp_path, monkeypatch, clean_registry):
    save_model(_model(), tmp_path / "weights")
    (tmp_path / "zoo_plugin_for_test.py").write_text(
        textwrap.dedent(
            f"""
            from maskzoo.core.registry import register_model
            CALLS = []
            def register():
                CALLS.append(1)
                register_model("plugin-tiny", weights_dir={str(tmp_path / "weights")!r})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(
        name="plugin", value="zoo_plugin_for_test:register", group=registry.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda **kw: [ep] if kw.get("group") == registry.ENTRY_POINT_GROUP else []
    )
    assert "zoo_plugin_for_test" not in sys.modules
    model = load_model("plugin-tiny")  # no import of the plugin by the caller
    assert model.config.vocab_size == V
    assert registry.list_models() == ["plugin-tiny"]
    assert sys.modules["zoo_plugin_for_test"].CALLS == [1]  # discovered once
    monkeypatch.delitem(sys.modules, "zoo_plugin_for_test")


def test_saving_into_an_existing_directory_keeps_files_it_did_not_write(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_0000005").mkdir(parents=True)
    (run / "checkpoints" / "step_0000005" / "model.safetensors").write_bytes(b"training checkpoint")
    (run / "README.md").write_text("my notes")
    save_model(_model(seed=3), run)  # export_dir == run_dir
    assert (run / "checkpoints" / "step_0000005" / "model.safetensors").read_bytes() == b"training checkpoint"
    assert (run / "README.md").read_text() == "my notes"
    with torch.no_grad():
        assert torch.equal(load_model(run)(IDS), _model(seed=3)(IDS))


def test_saving_onto_a_regular_file_is_a_user_error(tmp_path):
    (tmp_path / "m").write_text("not a model")
    with pytest.raises(UserError, match="not a directory"):
        save_model(_model(), tmp_path / "m")
    assert (tmp_path / "m").read_text() == "not a model"


def test_loading_a_core_zoo_model_imports_no_modality_package():
    """Entry points run lazily, the core's own first: the text model loads without timm, esm or torchaudio."""
    code = (
        "import sys\nfrom maskzoo.core import load_model\nload_model('text-char-shakespeare')\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('timm', 'esm', 'open_clip', 'torchaudio')"
        " or n.startswith(('maskzoo.vision', 'maskzoo.protein', 'maskzoo.audio'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
