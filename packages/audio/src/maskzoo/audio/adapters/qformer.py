"""A small Q-Former (Li et al. 2023, BLIP-2): learned queries read encoder states through cross-attention.

One layer (post-LN, as BERT):   q <- LN(q + SelfAttn(q));  q <- LN(q + CrossAttn(q, h));  q <- LN(q + FFN(q))
with q [B, Q, d] the queries and h [B, N, d] the encoder states. DIFFA and Whisper-LLaDA use a 2-layer BERT
(``BertEncoder`` with ``add_cross_attention``); this is the same computation without the BERT dependency.
"""

from __future__ import annotations

import torch
from torch import nn


class QFormerLayer(nn.Module):
    def __init__(self, d: int, n_heads: int, ffn: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        q = self.norm1(q + self.self_attn(q, q, q, need_weights=False)[0])  # [B, Q, d]
        q = self.norm2(q + self.cross_attn(q, h, h, need_weights=False)[0])  # [B, Q, d]
        return self.norm3(q + self.ffn(q))  # [B, Q, d]


class QFormer(nn.Module):
    """``forward(queries [B, Q, d], states [B, N, d]) -> [B, Q, d]`` through ``n_layers`` shared layers."""

    def __init__(self, d: int, n_heads: int, n_layers: int = 2, ffn: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(QFormerLayer(d, n_heads, ffn or 4 * d) for _ in range(n_layers))

    def forward(self, queries: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, states)
        return queries
