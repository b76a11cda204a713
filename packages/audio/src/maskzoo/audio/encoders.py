"""Encoder families behind one interface: ``featurize(waveforms [B, S]) -> inputs``, ``forward(inputs,
output_hidden_states) -> last [B, N, d] (, hidden states)``, ``out_dim``, ``num_positions`` (N per window),
``window_samples`` (16 kHz samples per window).

- ``whisper``: :class:`~maskzoo.audio.whisper_encoder.WhisperEncoder` on Whisper log-mel features.
- ``wav2vec2`` / ``hubert``: torchaudio's ``wav2vec2_model`` (Baevski et al. 2020; Hsu et al. 2021 share the
  architecture) on raw 16 kHz audio, 320x downsampling by the convolutional feature extractor (~50 Hz).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from maskzoo.audio.features import log_mel_spectrogram, pad_or_trim
from maskzoo.audio.whisper_encoder import WhisperEncoder, WhisperEncoderConfig
from maskzoo.core.errors import UserError


class WhisperFamily(WhisperEncoder):
    """A Whisper encoder that also turns waveforms into its log-mel input."""

    @property
    def window_samples(self) -> int:
        return self.config.n_samples

    @property
    def num_positions(self) -> int:
        return self.config.max_source_positions

    def featurize(self, waveforms: torch.Tensor) -> torch.Tensor:
        return log_mel_spectrogram(waveforms, self.config.n_mels, self.config.n_samples)  # [B, n_mels, 2N]


@dataclass
class Wav2Vec2Config:
    """A torchaudio ``wav2vec2_model`` (standard 7-layer conv feature extractor, post-LN transformer)."""

    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    ffn_dim: int = 3072
    window_seconds: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conv_frames(n: int) -> int:
    """Output frames of the standard extractor (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2)."""
    for k, s in ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)):
        n = (n - k) // s + 1
    return n


class Wav2Vec2Family(nn.Module):
    """torchaudio wav2vec2 / HuBERT on raw audio padded to the window."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        from torchaudio.models import wav2vec2_model

        self.config = config
        self.model = wav2vec2_model(
            extractor_mode="group_norm", extractor_conv_layer_config=None, extractor_conv_bias=False,
            encoder_embed_dim=config.d_model, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=128,
            encoder_pos_conv_groups=16, encoder_num_layers=config.n_layers, encoder_num_heads=config.n_heads,
            encoder_attention_dropout=0.0, encoder_ff_interm_features=config.ffn_dim,
            encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False,
            encoder_layer_drop=0.0, aux_num_out=None)

    @property
    def out_dim(self) -> int:
        return self.config.d_model

    @property
    def window_samples(self) -> int:
        return int(self.config.window_seconds * 16_000)

    @property
    def num_positions(self) -> int:
        return _conv_frames(self.window_samples)

    def featurize(self, waveforms: torch.Tensor) -> torch.Tensor:
        return pad_or_trim(waveforms, self.window_samples)  # [B, S]

    def forward(self, waveforms: torch.Tensor, output_hidden_states: bool = False):
        states, _ = self.model.extract_features(waveforms)  # L x [B, N, d]: each transformer layer's output
        if output_hidden_states:
            return states[-1], list(states)
        return states[-1]


def _whisper(d: dict[str, Any]) -> nn.Module:
    return WhisperFamily(WhisperEncoderConfig.from_dict(d))


def _wav2vec2(d: dict[str, Any]) -> nn.Module:
    unknown = sorted(set(d) - {f.name for f in fields(Wav2Vec2Config)})
    if unknown:
        raise UserError(f"wav2vec2 encoder config: unknown key(s) {unknown}")
    return Wav2Vec2Family(Wav2Vec2Config(**d))


FAMILIES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {"whisper": _whisper, "wav2vec2": _wav2vec2,
                                                               "hubert": _wav2vec2}


def build_encoder(config: dict[str, Any]) -> nn.Module:
    """``{"family": name, **fields}`` -> an encoder of that family (default family: whisper)."""
    cfg = dict(config)
    family = cfg.pop("family", "whisper")
    if family not in FAMILIES:
        raise UserError(f"unknown encoder family {family!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[family](cfg)
