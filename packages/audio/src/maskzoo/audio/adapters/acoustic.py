"""DIFFA's acoustic adapter (Zhou et al. 2025, arXiv 2507.18452, sec. 3.2): a Q-Former over several encoder
layers that captures paralinguistic information the last layer drops.

For each tapped layer j (e.g. [2, 5, 8, 11] of whisper-small) with its own learned queries P_j [Q, d]:

    o_j = QFormer(P_j, h_j)                 [B, Q, d]     one shared 2-layer cross-attention stack
    a   = softmax_j(W) ,  W [Q, J]          per query, a weight over the J tapped layers
    y   = sum_j a[:, j] * o_j               [B, Q, d]
    out = Linear(LayerNorm(y))              [B, Q, D]     to the LM width
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from maskzoo.audio.adapters.qformer import QFormer


class AcousticQFormer(nn.Module):
    def __init__(self, d_in: int, d_out: int, taps: Sequence[int], n_queries: int = 64, n_heads: int = 4,
                 n_layers: int = 2) -> None:
        super().__init__()
        if not taps:
            raise ValueError("the acoustic adapter needs at least one tapped layer")
        self.taps = tuple(int(t) for t in taps)
        self.queries = nn.Parameter(torch.randn(len(self.taps), n_queries, d_in) * 0.02)  # [J, Q, d]
        self.layer_weights = nn.Parameter(torch.zeros(n_queries, len(self.taps)))  # [Q, J]
        self.qformer = QFormer(d_in, n_heads, n_layers)
        self.proj = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_out))

    @property
    def num_tokens(self) -> int:
        return self.queries.shape[1]

    def forward(self, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """``hidden_states``: the encoder's list (index j = input of layer j; last = final output)."""
        if max(self.taps) >= len(hidden_states):
            raise ValueError(f"tap {max(self.taps)} is beyond the encoder's {len(hidden_states)} hidden states")
        b = hidden_states[0].shape[0]
        outs = [self.qformer(self.queries[j].expand(b, -1, -1), hidden_states[t])  # [B, Q, d]
                for j, t in enumerate(self.taps)]
        stacked = torch.stack(outs, dim=2)  # [B, Q, J, d]
        a = self.layer_weights.softmax(dim=-1)[None, :, :, None]  # [1, Q, J, 1]
        return self.proj((stacked * a).sum(dim=2))  # [B, Q, D]
