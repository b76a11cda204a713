"""The MDiff4STR decoder: post-LN transformer blocks of self-attention over the character tokens,
cross-attention to the image features, and an MLP (Du et al. 2025, arXiv 2512.01422, fig. 2).

With ``causal=False`` (the diffusion decoder) self-attention is bidirectional: every position sees every
other, masked or not, and the decoder predicts ``p(x_0 | x_t, image)`` at all positions at once. With
``causal=True`` the same blocks form the autoregressive baseline of the same size (position ``i`` sees
``0..i``; its input is the target shifted right behind a start token).

Positions: fixed sinusoids plus a learned correction (as OpenOCR's decoder); with an all-MASK input they are
the only thing that tells the positions apart, so they must not start near zero.

Block (post-LN, as the paper's NRTR-style decoder)::

    x = LN(x + SelfAttn(x))
    x = LN(x + CrossAttn(x, memory))
    x = LN(x + MLP(x))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskzoo.vision.str.encoder import sincos_1d


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"d_model {dim} is not divisible by n_heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, causal: bool = False) -> Tensor:
        b, n, c = x.shape
        m = context.shape[1]
        h = self.heads
        q = self.q(x).view(b, n, h, c // h).transpose(1, 2)  # [B, h, n, c/h]
        k, v = self.kv(context).view(b, m, 2, h, c // h).permute(2, 0, 3, 1, 4)  # 2 x [B, h, m, c/h]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # [B, h, n, c/h]
        return self.out(a.transpose(1, 2).reshape(b, n, c))  # [B, n, c]


class DecoderBlock(nn.Module):
    """One post-LN block: self-attention, cross-attention to the image, MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, heads, 0.0)
        self.cross_attn = _Attention(dim, heads, 0.0)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, causal: bool) -> Tensor:
        x = self.norm1(x + self.drop(self.self_attn(x, x, causal)))  # [B, L, d]
        x = self.norm2(x + self.drop(self.cross_attn(x, memory)))  # [B, L, d]
        return self.norm3(x + self.drop(self.mlp(x)))  # [B, L, d]


class STRDecoder(nn.Module):
    """``forward(tokens [B, L], memory [B, N, d_mem]) -> logits [B, L, num_classes]``."""

    def __init__(self, vocab_size: int, num_classes: int, seq_len: int, memory_dim: int, d_model: int = 384,
                 n_layers: int = 6, n_heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.1,
                 causal: bool = False) -> None:
        super().__init__()
        self.causal, self.d_model, self.seq_len = causal, d_model, seq_len
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)  # unit scale after the sqrt(d) factor
        self.pos = nn.Parameter(torch.zeros(1, seq_len, d_model))  # learned correction of the fixed sinusoids
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.memory_proj = nn.Identity() if memory_dim == d_model else nn.Linear(memory_dim, d_model)
        self.blocks = nn.ModuleList([DecoderBlock(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers)])
        self.head = nn.Linear(d_model, num_classes, bias=False)
        self.drop = nn.Dropout(dropout)

    def project_memory(self, memory: Tensor) -> Tensor:
        """Image features in the decoder width, ``[B, N, d_model]`` (computed once per image)."""
        return self.memory_proj(memory)

    def forward(self, tokens: Tensor, memory: Tensor) -> Tensor:
        """``memory`` must come from :meth:`project_memory`."""
        n = tokens.shape[1]
        sin = sincos_1d(self.seq_len, self.d_model)[:n].to(self.pos.device, self.pos.dtype)  # [n, d] fixed
        x = self.drop(self.embed(tokens) * math.sqrt(self.d_model) + sin + self.pos[:, :n])  # [B, L, d]
        for blk in self.blocks:
            x = blk(x, memory, self.causal)
        return self.head(x)  # [B, L, num_classes]
