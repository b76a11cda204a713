"""The Whisper encoder (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision"),
with Hugging Face parameter names so a local ``WhisperModel`` checkpoint loads strictly.

    x   = GELU(conv1(mel))                  [B, d, F]       Conv1d(n_mels, d, 3, padding 1)
    x   = GELU(conv2(x))                    [B, d, F / 2]   Conv1d(d, d, 3, stride 2, padding 1)
    h_0 = x^T + P                           [B, N, d]       P: sinusoidal positions, N = max_source_positions
    h_l = h_{l-1} + MHA(LN(h_{l-1}));  h_l = h_l + FFN(LN(h_l))      pre-LN blocks, GELU FFN, k_proj without bias
    out = LN(h_L)                           [B, N, d]       (1500 positions for a 30 s window)

``hidden_states`` (for layer taps) follow Hugging Face: ``[h_0, h_1, ..., h_{L-1}, out]``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskzoo.core.errors import UserError


@dataclass
class WhisperEncoderConfig:
    """Architecture of a Whisper encoder (the Hugging Face ``WhisperConfig`` encoder fields)."""

    n_mels: int = 80
    d_model: int = 384
    n_layers: int = 4
    n_heads: int = 6
    ffn_dim: int = 1536
    max_source_positions: int = 1500

    def __post_init__(self) -> None:
        for name in ("n_mels", "d_model", "n_layers", "n_heads", "ffn_dim", "max_source_positions"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"whisper encoder config: {name} must be >= 1")
        if self.d_model % self.n_heads:
            raise UserError(f"whisper encoder config: d_model {self.d_model} not divisible by n_heads {self.n_heads}")

    @property
    def n_frames(self) -> int:
        """Mel frames the encoder takes (2 per output position): 3000 for Whisper's 30 s window."""
        return 2 * self.max_source_positions

    @property
    def n_samples(self) -> int:
        """16 kHz samples of one window (160 per mel frame)."""
        return 160 * self.n_frames

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WhisperEncoderConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"whisper encoder config: unknown key(s) {unknown}")
        return cls(**d)

    @classmethod
    def from_hf(cls, d: dict[str, Any]) -> WhisperEncoderConfig:
        """From a Hugging Face Whisper ``config.json``."""
        act = d.get("activation_function", "gelu")
        if act != "gelu":
            raise UserError(f"whisper config: activation_function {act!r} is not supported (only gelu)")
        try:
            return cls(n_mels=d["num_mel_bins"], d_model=d["d_model"], n_layers=d["encoder_layers"],
                       n_heads=d["encoder_attention_heads"], ffn_dim=d["encoder_ffn_dim"],
                       max_source_positions=d["max_source_positions"])
        except KeyError as e:
            raise UserError(f"whisper config.json lacks {e.args[0]!r}") from None


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's positional table ``[length, channels]``: ``[sin(p w_i), cos(p w_i)]``,
    ``w_i = max_timescale^(-i / (channels / 2 - 1))``."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))  # [C/2]
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]  # [length, C/2]
    return torch.cat([t.sin(), t.cos()], dim=1)  # [length, C]


class WhisperAttention(nn.Module):
    """Multi-head self-attention; q scaled by head_dim^-1/2 (folded into q as Hugging Face does)."""

    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.n_heads
        q = self.q_proj(x).view(b, n, h, d // h).transpose(1, 2)  # [B, H, N, hd]
        k = self.k_proj(x).view(b, n, h, d // h).transpose(1, 2)  # [B, H, N, hd]
        v = self.v_proj(x).view(b, n, h, d // h).transpose(1, 2)  # [B, H, N, hd]
        y = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, hd]
        return self.out_proj(y.transpose(1, 2).reshape(b, n, d))  # [B, N, d]


class WhisperEncoderLayer(nn.Module):
    def __init__(self, cfg: WhisperEncoderConfig) -> None:
        super().__init__()
        self.self_attn = WhisperAttention(cfg.d_model, cfg.n_heads)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.d_model)
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.d_model)
        self.final_layer_norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))  # [B, N, d]
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))  # [B, N, d]


class WhisperEncoder(nn.Module):
    """``forward(features [B, n_mels, 2N]) -> [B, N, d]``; ``output_hidden_states=True`` -> list of L + 1."""

    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, d)
        self.embed_positions.weight.data.copy_(sinusoids(config.max_source_positions, d))
        self.embed_positions.weight.requires_grad_(False)
        self.layers = nn.ModuleList(WhisperEncoderLayer(config) for _ in range(config.n_layers))
        self.layer_norm = nn.LayerNorm(d)

    @property
    def out_dim(self) -> int:
        return self.config.d_model

    def forward(self, features: torch.Tensor, output_hidden_states: bool = False):
        cfg = self.config
        if features.dim() != 3 or features.shape[1] != cfg.n_mels or features.shape[2] != cfg.n_frames:
            raise UserError(f"whisper encoder expects features [B, {cfg.n_mels}, {cfg.n_frames}], "
                            f"got {tuple(features.shape)}")
        x = F.gelu(self.conv1(features))  # [B, d, 2N]
        x = F.gelu(self.conv2(x))  # [B, d, N]
        x = x.transpose(1, 2) + self.embed_positions.weight  # [B, N, d]
        states = []
        for layer in self.layers:
            states.append(x)
            x = layer(x)  # [B, N, d]
        x = self.layer_norm(x)  # [B, N, d]
        if output_hidden_states:
            return x, [*states, x]
        return x


# ------------------------------------------------------------------------------------------------ loading
_PREFIXES = ("model.encoder.", "encoder.", "")


def encoder_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a Hugging Face Whisper state dict, prefix removed: keys ``model.encoder.*``
    (WhisperForConditionalGeneration), ``encoder.*`` (WhisperModel) or bare (WhisperEncoder alone)."""
    for prefix in _PREFIXES:
        if prefix and any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def load_whisper_encoder(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> WhisperEncoder:
    """The encoder of a local Hugging Face Whisper checkpoint directory (``config.json`` +
    ``model.safetensors``, whole model or encoder only), loaded strictly, in eval mode.

    Output on features ``[B, n_mels, 3000]``: the last hidden state ``[B, 1500, d]``
    (``output_hidden_states=True`` also returns every layer's input, for layer taps).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    cfg_file, weights = p / "config.json", p / "model.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise UserError(f"{p}: a Whisper checkpoint directory needs config.json and model.safetensors")
    try:
        hf = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{cfg_file}: not valid JSON ({e})") from None
    if hf.get("model_type") not in (None, "whisper"):
        raise UserError(f"{cfg_file}: model_type {hf.get('model_type')!r} is not whisper")
    config = WhisperEncoderConfig.from_hf(hf)
    try:
        state = encoder_state_dict(load_file(str(weights)))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{weights}: unreadable safetensors file ({e})") from None
    encoder = WhisperEncoder(config)
    load_strict(encoder, state, str(weights))
    return encoder.to(dtype).eval()


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """``load_state_dict`` that reports missing / unexpected / mis-shaped tensors as one UserError line."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(f"{name}: weights do not match the architecture (missing {missing[:3]}"
                        f"{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                        f"{'...' if len(unexpected) > 3 else ''})")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise UserError(f"{name}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    module.load_state_dict(state, strict=True)
