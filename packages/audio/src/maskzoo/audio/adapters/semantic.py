"""DIFFA's semantic adapter (Zhou et al. 2025, arXiv 2507.18452, sec. 3.2): the encoder's last hidden state,
4x downsampled in time and projected to the LM width.

    h  [B, N, d]  --(drop N mod 4 frames)-->  Conv1d(d, d, 3, pad 1) -> GELU -> Conv1d(d, 4d, 3, stride 4, pad 1)
                                              [B, 4d, N/4]
       -> Linear(4d, d) -> ReLU -> Linear(d, D) -> ReLU -> LayerNorm(D)      [B, N/4, D]
"""

from __future__ import annotations

import torch
from torch import nn


class SemanticAdapter(nn.Module):
    def __init__(self, d_in: int, d_out: int, downsample: int = 4) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv = nn.Sequential(
            nn.Conv1d(d_in, d_in, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv1d(d_in, d_in * downsample, kernel_size=3, stride=downsample, padding=1),
        )
        self.proj = nn.Sequential(
            nn.Linear(d_in * downsample, d_in), nn.ReLU(), nn.Linear(d_in, d_out), nn.ReLU(),
        )
        self.norm = nn.LayerNorm(d_out)

    def num_tokens(self, n_frames: int) -> int:
        """Output positions for ``n_frames`` encoder positions."""
        return n_frames // self.downsample

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = h.shape[1] - h.shape[1] % self.downsample
        x = self.conv(h[:, :n].transpose(1, 2))  # [B, 4d, N/4]
        return self.norm(self.proj(x.transpose(1, 2)))  # [B, N/4, D]
