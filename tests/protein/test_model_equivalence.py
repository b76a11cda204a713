"""ESM2 through maskzoo's attention equals fair-esm's own ESM2 forward; the .pt loader is safe and strict."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch
from _protein_helpers import fair_esm_checkpoint_dict, make_fair_esm

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.checkpoints import load_dsm_dir, load_fair_esm, load_model, save_dsm

SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLE", "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF"]


def _batch(seqs, mask_frac: float = 0.0, seed: int = 0):
    alphabet = get_alphabet()
    ids = alphabet.batch([alphabet.encode(s) for s in seqs])  # [B, L] with <pad>
    if mask_frac:
        g = torch.Generator().manual_seed(seed)
        m = (torch.rand(ids.shape, generator=g) < mask_frac) & ~alphabet.special_mask(ids)
        ids = ids.masked_fill(m, alphabet.mask_id)
    return ids


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
@pytest.mark.parametrize("mask_frac", [0.0, 0.3])
def test_logits_equal_fair_esm(fair_esm_pt, backend, mask_frac):
    path, ref = fair_esm_pt
    model = load_fair_esm(path)
    model.set_attention_backend(backend)
    assert model.config.token_dropout is True  # kept from the checkpoint, so logits match fair-esm
    ids = _batch(SEQS, mask_frac)
    with torch.no_grad():
        expected = ref(ids)["logits"]  # [B, L, 33]
        got = model(ids)
    assert got.shape == (len(SEQS), ids.shape[1], 33)
    real = ids != get_alphabet().pad_id  # padded rows are undefined in both implementations
    assert torch.allclose(got[real], expected[real], atol=1e-4, rtol=0)


def test_single_sequence_and_representations(fair_esm_pt):
    path, ref = fair_esm_pt
    model = load_fair_esm(path)
    ids = _batch(SEQS[:1])
    with torch.no_grad():
        r = ref(ids, repr_layers=[0, 1, 2])
        final, reps = model.hidden_states(ids, repr_layers=(0, 1, 2))
    for layer in (0, 1, 2):
        assert torch.allclose(reps[layer], r["representations"][layer], atol=1e-4)
    assert torch.allclose(final, r["representations"][2], atol=1e-4)


def test_dsm_directory_round_trip(fair_esm_pt, tmp_path):
    path, ref = fair_esm_pt
    model = load_fair_esm(path)
    save_dsm(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    ids = _batch(SEQS)
    with torch.no_grad():
        assert torch.equal(again(ids), model(ids))
    assert again.lm_head.weight is again.embed_tokens.weight  # tie survives loading


def test_core_load_model_reads_dsm_directory(tiny_dsm_dir):
    from maskzoo.core.checkpoint import load_model as core_load

    m = core_load(tiny_dsm_dir)
    assert type(m).__name__ == "ESM2" and m.mask_id == get_alphabet().mask_id


def test_loader_refuses_arbitrary_objects(tmp_path):
    """A pickle that would run code (os.system via __reduce__) is refused, not executed."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ref, _ = make_fair_esm(num_layers=1, embed_dim=16, heads=2)
    data = fair_esm_checkpoint_dict(ref)
    data["evil"] = Evil()
    bad = tmp_path / "esm2_evil.pt"
    torch.save(data, bad)
    with pytest.raises(UserError, match="refused to unpickle"):
        load_fair_esm(bad)
    assert not marker.exists()


def test_loader_allows_namespace_only(tmp_path):
    ref, _ = make_fair_esm(num_layers=1, embed_dim=16, heads=2)
    data = fair_esm_checkpoint_dict(ref)
    assert isinstance(data["cfg"]["model"], argparse.Namespace)
    p = tmp_path / "esm2_t1.pt"
    torch.save(data, p)
    assert load_fair_esm(p).config.num_layers == 1


def test_corrupt_and_mismatched_checkpoints(tmp_path, fair_esm_pt):
    path, _ = fair_esm_pt
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_fair_esm(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="garbage.pt"):
        load_fair_esm(garbage)
    data = torch.load(path, weights_only=False)
    del data["model"]["encoder.sentence_encoder.layers.0.fc1.weight"]
    missing = tmp_path / "missing.pt"
    torch.save(data, missing)
    with pytest.raises(UserError, match="fc1.weight"):
        load_fair_esm(missing)
    esm1b = tmp_path / "esm1b.pt"
    torch.save({"args": argparse.Namespace(arch="roberta_large"), "model": {}}, esm1b)
    with pytest.raises(UserError, match="not an ESM-2"):
        load_fair_esm(esm1b)


def test_corrupt_safetensors_directory(tiny_dsm_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dsm_dir, bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_dsm_dir(bad)


def test_token_dropout_blows_up_near_full_masking():
    """Documents why DSM turns token dropout off: with all residues masked the special tokens' embeddings are
    rescaled by 0.88 (n + 2) / 2."""
    from maskzoo.protein.model import ESM2, ESM2Config

    torch.manual_seed(0)
    m = ESM2(ESM2Config(num_layers=1, embed_dim=16, attention_heads=2, token_dropout=True))
    a = get_alphabet()
    n = 150
    ids = torch.tensor([[a.cls_id] + [a.mask_id] * n + [a.eos_id]])
    keep = torch.ones_like(ids, dtype=torch.bool)
    x = m._embed(ids, keep)
    scale = (x[0, 0].norm() / m.embed_tokens.weight[a.cls_id].norm()).item()
    assert scale == pytest.approx(0.88 * (n + 2) / 2, rel=1e-4)
    m.config.token_dropout = False
    assert torch.allclose(m._embed(ids, keep)[0, 0], m.embed_tokens.weight[a.cls_id])


def test_pickle_module_not_used_for_dirs(tiny_dsm_dir, monkeypatch):
    """Loading a DSM directory never touches pickle."""
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pickle used")))
    load_dsm_dir(tiny_dsm_dir)
