"""``STRModel``: an image encoder and a character decoder (MDiff4STR, Du et al. 2025, arXiv 2512.01422).

``model(tokens [B, L], images [B, C, 32, 128]) -> logits [B, L, num_classes]``. ``tokens`` is the noisy
sequence ``x_t`` for the diffusion decoder (MASK = absorbing state) or the right-shifted target for the
autoregressive baseline (``config.causal``). Inference goes through :mod:`maskzoo.vision.str.inference`, which
encodes each image once (:meth:`STRModel.encode`) and calls :meth:`STRModel.decode` per step.

The checkpoint is the core maskzoo format (config.json + model.safetensors), architecture ``STRModel``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from maskzoo.core.checkpoint import register_architecture
from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import PRINTABLE_94, Alphabet
from maskzoo.vision.str.decoder import STRDecoder
from maskzoo.vision.str.encoder import build_encoder

#: decoder sizes: the paper's base decoder and smaller ones for CPU training
DECODER_PRESETS: dict[str, dict[str, int]] = {
    "base": {"d_model": 384, "n_layers": 6, "n_heads": 12},
    "small": {"d_model": 256, "n_layers": 3, "n_heads": 8},
    "tiny": {"d_model": 160, "n_layers": 2, "n_heads": 5},
}


@dataclass
class STRConfig:
    """Architecture of an STR model (serialised into config.json)."""

    encoder: str = "svtrv2-small"
    """svtrv2-tiny | svtrv2-small | svtrv2-base | timm:<name>"""
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 12
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    causal: bool = False
    """False: masked-diffusion decoder (bidirectional); True: autoregressive baseline"""
    charset: str = PRINTABLE_94
    max_len: int = 25
    in_chans: int = 1
    """1 = grayscale input (every image is converted), 3 = RGB"""
    height: int = 32
    width: int = 128
    ctc_aux: bool = False
    """a CTC head on the encoder's columns, trained as an auxiliary loss (hybrid CTC/attention, Kim et al.
    2017) so the encoder learns to align characters early; inference never uses it (svtrv2 encoders only)"""

    @classmethod
    def from_preset(cls, decoder: str, **kwargs: Any) -> STRConfig:
        if decoder not in DECODER_PRESETS:
            raise UserError(f"unknown decoder preset {decoder!r}; choose one of {', '.join(DECODER_PRESETS)}")
        return cls(**DECODER_PRESETS[decoder], **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> STRConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"STR config: unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def alphabet(self) -> Alphabet:
        return Alphabet(self.charset, self.max_len)


class STRModel(nn.Module):
    """Encoder + decoder; see the module docstring."""

    def __init__(self, config: STRConfig) -> None:
        super().__init__()
        self.config = config
        self.alphabet = config.alphabet
        self.encoder = build_encoder(config.encoder, config.in_chans, (config.height, config.width))
        a = self.alphabet
        self.decoder = STRDecoder(a.vocab_size, a.num_classes, a.seq_len, self.encoder.out_dim, config.d_model,
                                  config.n_layers, config.n_heads, config.mlp_ratio, config.dropout, config.causal)
        self.ctc_head: nn.Linear | None = None
        if config.ctc_aux:
            if not config.encoder.startswith("svtrv2-"):
                raise UserError("ctc_aux needs an svtrv2 encoder (its token grid is height/16 x width/4)")
            self.ctc_head = nn.Linear(config.d_model, a.num_classes)  # blank = EOS id, then the characters

    @property
    def causal(self) -> bool:
        return self.config.causal

    def encode(self, images: Tensor) -> Tensor:
        """Image features in the decoder width ``[B, N, d_model]``."""
        return self.decoder.project_memory(self.encoder(images))

    def decode(self, memory: Tensor, tokens: Tensor) -> Tensor:
        """Logits ``[B, L, num_classes]`` for decoder input ``tokens`` ``[B, L]``."""
        return self.decoder(tokens, memory)

    def ctc_log_probs(self, memory: Tensor) -> Tensor:
        """Per-column CTC log-probabilities ``[W', B, num_classes]`` (time first, as ``F.ctc_loss`` wants) from
        ``memory [B, H' * W', d_model]`` (:meth:`encode`), averaged over the grid's rows."""
        if self.ctc_head is None:
            raise UserError("this STR model has no CTC head (ctc_aux: false)")
        c = self.config
        b, n, d = memory.shape
        w = c.width // 4
        cols = memory.view(b, n // w, w, d).mean(dim=1)  # [B, W', d]
        return self.ctc_head(cols).float().log_softmax(-1).transpose(0, 1)  # [W', B, V]

    @property
    def mask_id(self) -> int:
        return self.alphabet.mask_id

    def blank_images(self, batch: int) -> Tensor:
        """Uniform mid-grey crops ``[B, C, H, W]`` (0 in the model's [-1, 1] pixel range)."""
        c = self.config
        return torch.zeros(batch, c.in_chans, c.height, c.width, device=self.decoder.pos.device)

    def forward(self, input_ids: Tensor, images: Tensor | None = None) -> Tensor:
        """Logits ``[B, L, num_classes]`` for decoder input ``input_ids`` ``[B, L]`` reading ``images``
        ``[B, C, H, W]``; without images the decoder reads blank crops (so every zoo entry maps ids to
        logits, as the core's contract says)."""
        if images is None:
            images = self.blank_images(input_ids.shape[0])
        return self.decode(self.encode(images), input_ids)


register_architecture("STRModel", STRModel, STRConfig)
