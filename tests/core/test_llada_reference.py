"""The published LLaDA format: our loader + transformer reproduce the reference modeling_llada.py logits and the
reference generate.py tokens (fixture made by the reference code; see fixtures/llada/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from maskzoo.core import llada_format
from maskzoo.core.checkpoint import load_model
from maskzoo.core.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "llada"
MODEL_DIR = FIXTURES / "llada_tiny"


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "reference_outputs.safetensors"))


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL_DIR)


def test_config_translation():
    cfg = llada_format.config_from_llada(json.loads((MODEL_DIR / "config.json").read_text()))
    assert (cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads) == (300, 64, 2, 4, 2)
    assert (cfg.mlp_hidden, cfg.rope_theta, cfg.norm_eps, cfg.mask_token_id) == (128, 500000.0, 1e-5, 260)
    assert not cfg.causal and not cfg.tie_embeddings


def test_key_mapping_round_trip():
    keys = load_file(str(MODEL_DIR / "model.safetensors")).keys()
    for k in keys:
        ours = llada_format.key_from_llada(k)
        assert ours is not None, k
        assert llada_format.key_to_llada(ours) == k
    assert llada_format.key_from_llada("model.transformer.blocks.0.att_proj.weight") is None


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_logits_match_reference(model, ref, backend):
    model.config.attention_backend = backend
    try:
        with torch.no_grad():
            logits = model(ref["ids"])  # [2, 12, 300]
    finally:
        model.config.attention_backend = None
    assert logits.dtype == torch.float32
    assert logits.shape == ref["logits"].shape
    torch.testing.assert_close(logits, ref["logits"], atol=1e-4, rtol=0)


def test_padded_logits_match_reference_with_reference_positions(model, ref):
    """The reference masks padded keys but keeps positions 0..L-1; passing those positions reproduces it."""
    n = ref["pad_ids"].shape[1]
    with torch.no_grad():
        logits = model(ref["pad_ids"], attention_mask=ref["pad_mask"], position_ids=torch.arange(n))
    torch.testing.assert_close(logits, ref["logits_padded"], atol=1e-4, rtol=0)


def test_default_positions_make_left_padding_invisible(model, ref):
    """Our default (cumsum positions) gives a left-padded row exactly the logits it has alone."""
    pad = int((ref["pad_mask"][1] == 0).sum())
    with torch.no_grad():
        padded = model(ref["pad_ids"], attention_mask=ref["pad_mask"])[1, pad:]
        alone = model(ref["pad_ids"][1:, pad:])[0]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


def test_sharded_checkpoint(tmp_path, model, ref):
    """model.safetensors.index.json + shards (the layout of the 8B checkpoints) loads to the same model."""
    state = load_file(str(MODEL_DIR / "model.safetensors"))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for fname, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(tmp_path / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(ks, fname))
    total = sum(t.numel() * t.element_size() for t in state.values())
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    shutil.copy(MODEL_DIR / "config.json", tmp_path / "config.json")
    sharded = load_model(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(sharded(ref["ids"]), model(ref["ids"]), atol=0, rtol=0)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(UserError, match="missing"):
        load_model(tmp_path)


def test_code_in_checkpoint_is_never_run(tmp_path):
    """auto_map points at modeling files shipped with the weights; loading must not import them."""
    shutil.copytree(MODEL_DIR, tmp_path / "ckpt")
    sentinel = tmp_path / "executed"
    for name in ("modeling_llada.py", "configuration_llada.py", "__init__.py"):
        (tmp_path / "ckpt" / name).write_text(f"open({str(sentinel)!r}, 'w').write('x')\n")
    load_model(tmp_path / "ckpt")
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"include_bias": True}, "include_bias"),
        ({"block_type": "sequential"}, "block_type"),
        ({"n_layers": 3}, "missing tensors"),
        ({"d_model": 32}, "shape"),
    ],
)
def test_llada_config_errors(tmp_path, change, match):
    shutil.copytree(MODEL_DIR, tmp_path / "ckpt")
    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    cfg.update(change)
    if change.get("d_model") == 32:
        cfg["n_heads"], cfg["n_kv_heads"] = 4, 2
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=match):
        load_model(tmp_path / "ckpt")


def _cases() -> list[dict]:
    return json.loads((FIXTURES / "reference_cases.json").read_text())


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_generate_reproduces_reference_tokens(model, ref, case):
    """temperature 0, low_confidence: the core generate() gives the reference generate() tokens exactly."""
    sampling = pytest.importorskip("maskzoo.core.sampling")
    out = sampling.generate(
        model,
        ref[case["prompt"]],
        gen_length=case["gen_length"],
        steps=case["steps"],
        block_length=case["block_length"],
        temperature=case["temperature"],
        remasking=case["remasking"],
    )
    assert torch.equal(out, ref[case["name"]])
