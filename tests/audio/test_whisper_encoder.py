"""The Whisper encoder loads a Hugging Face checkpoint strictly and reproduces its hidden states."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from _audio_fixtures import REFERENCE, reference_features
from safetensors.torch import load_file, save_file

from maskzoo.audio import load_whisper_encoder, log_mel_spectrogram
from maskzoo.audio.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, sinusoids
from maskzoo.core.errors import UserError

TINY = REFERENCE / "tiny_whisper"


@pytest.fixture(scope="module")
def reference():
    return load_file(str(REFERENCE / "encoder_outputs.safetensors"))


def test_last_and_tapped_hidden_states_match_transformers(reference):
    enc = load_whisper_encoder(TINY)
    wave = torch.from_numpy(reference_features()["wave_speech"])
    feats = log_mel_spectrogram(wave)[None]  # [1, 80, 3000]: our front end feeds the encoder
    with torch.no_grad():
        last, states = enc(feats, output_hidden_states=True)
    assert last.shape == (1, 1500, 64) and len(states) == 5
    assert (last - reference["last_hidden_state"]).abs().max().item() < 1e-4
    assert (states[2] - reference["hidden_state_2"]).abs().max().item() < 1e-4
    assert torch.equal(states[-1], last)


@pytest.mark.parametrize("prefix", ["model.encoder.", ""])
def test_loads_other_key_layouts(tmp_path, prefix):
    state = {k: v for k, v in load_file(str(TINY / "model.safetensors")).items() if k.startswith("encoder.")}
    save_file({prefix + k[len("encoder."):]: v for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    a, b = load_whisper_encoder(tmp_path), load_whisper_encoder(TINY)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_strict_loading_names_the_problem(tmp_path):
    state = load_file(str(TINY / "model.safetensors"))
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    bad = dict(state)
    bad["encoder.layers.0.self_attn.k_proj.bias"] = torch.zeros(64)  # Whisper's k_proj has no bias
    save_file(bad, str(tmp_path / "model.safetensors"))
    with pytest.raises(UserError, match="unexpected"):
        load_whisper_encoder(tmp_path)
    cfg = json.loads((TINY / "config.json").read_text())
    cfg["encoder_layers"] = 5
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(UserError, match="missing"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError):
        load_whisper_encoder(tmp_path)


def test_sinusoids_and_shape_check():
    assert torch.allclose(load_file(str(TINY / "model.safetensors"))["encoder.embed_positions.weight"],
                          sinusoids(1500, 64), atol=1e-5)
    enc = WhisperEncoder(WhisperEncoderConfig(d_model=32, n_layers=1, n_heads=2, ffn_dim=64, max_source_positions=10))
    assert enc(torch.zeros(2, 80, 20)).shape == (2, 10, 32)
    with pytest.raises(UserError, match="expects features"):
        enc(torch.zeros(2, 80, 30))
