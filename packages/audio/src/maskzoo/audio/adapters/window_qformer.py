"""Whisper-LLaDA's window-level Q-Former (Liu et al. 2025, arXiv 2509.16622, following SALMONN, Tang et al.
2024): the encoder output is cut into windows and each window is summarised by a few learned queries, so the
number of audio tokens grows with the audio length.

    h [B, N, d] -> pad N to a multiple of w -> windows [B * N/w, w, d]       (w = 17 frames, ~0.33 s at 50 Hz)
    o = QFormer(P, window)                    [B * N/w, q, d]                 P [q, d] learned, q = 4
    out = Linear(LayerNorm(o)) -> [B, (N/w) * q, D]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from maskzoo.audio.adapters.qformer import QFormer


class WindowQFormer(nn.Module):
    def __init__(self, d_in: int, d_out: int, window: int = 17, n_queries: int = 4, n_heads: int = 4,
                 n_layers: int = 2) -> None:
        super().__init__()
        self.window = window
        self.queries = nn.Parameter(torch.randn(n_queries, d_in) * 0.02)  # [q, d]
        self.qformer = QFormer(d_in, n_heads, n_layers)
        self.proj = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_out))

    def num_tokens(self, n_frames: int) -> int:
        return math.ceil(n_frames / self.window) * self.queries.shape[0]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        n_win = math.ceil(n / self.window)
        h = F.pad(h, (0, 0, 0, n_win * self.window - n))  # [B, n_win * w, d]
        windows = h.reshape(b * n_win, self.window, d)  # [B n_win, w, d]
        q = self.queries.expand(b * n_win, -1, -1)  # [B n_win, q, d]
        o = self.qformer(q, windows)  # [B n_win, q, d]
        return self.proj(o.reshape(b, n_win * self.queries.shape[0], d))  # [B, n_win q, D]
