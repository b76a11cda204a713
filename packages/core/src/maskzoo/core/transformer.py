"""The mask predictor: a bidirectional Transformer in the LLaDA architecture.

LLaDA (Nie et al. 2025, "Large Language Diffusion Models", arXiv 2502.09992) uses a LLaMA-style Transformer
without the causal mask. For input embeddings x^0 [B, L, d] and layers l = 1..N:

    h   = x^{l-1} + W_o · Attn(RoPE(W_q n(x^{l-1})), RoPE(W_k n(x^{l-1})), W_v n(x^{l-1}))
    x^l = h + W_down ( SiLU(W_gate n'(h)) ⊙ W_up n'(h) )                                   (SwiGLU, Shazeer 2020)
    logits = W_head · n_f(x^N)

with RMSNorm n(x) = g ⊙ x / sqrt(mean(x^2) + eps) (Zhang & Sennrich 2019), rotary position embeddings
(Su et al. 2021, "rotate-half" layout), no biases, and optional grouped-query attention. ``causal=True`` turns
the same code into an autoregressive baseline.

Positions: with an ``attention_mask`` [B, L] (1 = real token) and no ``position_ids``, position ids are
``cumsum(attention_mask) - 1`` clamped at 0, so a left-padded prompt gets exactly the logits it gets alone.
(The published LLaDA code always uses 0..L-1; pass ``position_ids`` explicitly to reproduce that.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from maskzoo.core.attention import attention, padding_mask
from maskzoo.core.errors import UserError
from maskzoo.core.kv_cache import KVCache

__all__ = ["DiffusionTransformer", "TransformerConfig"]


@dataclass
class TransformerConfig:
    """Architecture arguments of :class:`DiffusionTransformer` (all of them; saved in every checkpoint).

    ``n_kv_heads`` < ``n_heads`` gives grouped-query attention; ``mlp_hidden`` defaults to 8/3 · d_model rounded
    up to a multiple of 64 (the LLaMA rule); ``mask_token_id`` is the absorbing [MASK] token (required unless
    ``causal``); ``attention_backend`` is None (auto), "sdpa", "xformers" or "eager".
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int | None = None
    mlp_hidden: int | None = None
    max_seq_len: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    mask_token_id: int | None = None
    causal: bool = False
    tie_embeddings: bool = False
    attention_backend: str | None = None
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.mlp_hidden is None:
            self.mlp_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "mlp_hidden", "max_seq_len"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise UserError(f"model config: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise UserError("model config: head dimension d_model / n_heads must be even for RoPE")
        if self.n_heads % self.n_kv_heads:
            raise UserError(f"model config: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if self.mask_token_id is None and not self.causal:
            raise UserError("model config: a diffusion model (causal=False) needs mask_token_id")
        if self.mask_token_id is not None and not 0 <= self.mask_token_id < self.vocab_size:
            raise UserError(f"model config: mask_token_id {self.mask_token_id} is outside the vocabulary [0, {self.vocab_size})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        """Build from a dict, rejecting unknown keys with a UserError that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"model config: unknown key(s) {unknown}; known keys are {sorted(known)}")
        missing = sorted(n for n in ("vocab_size", "d_model", "n_layers", "n_heads") if n not in d)
        if missing:
            raise UserError(f"model config: missing key(s) {missing}")
        return cls(**d)


class RMSNorm(nn.Module):
    """y = g ⊙ x / sqrt(mean(x^2) + eps), normalised in float32 and cast back (as LLaDA does)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()  # [..., d]
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)  # [..., d]
        return self.weight * xf.to(x.dtype)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 cos/sin tables [B, 1, L, D] for positions [B, L]: angle_{p,i} = p · theta^(-2i/D), i < D/2,
    duplicated over both halves (rotate-half layout)."""
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim
    )  # [D/2]
    angles = position_ids.float()[..., None] * inv_freq  # [B, L, D/2]
    angles = torch.cat((angles, angles), dim=-1)[:, None]  # [B, 1, L, D]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i+D/2}) by the position angle: x cos + rotate_half(x) sin, in float32 (as LLaDA's
    ``rope_full_precision``), cast back to the dtype of ``x``."""
    xf = x.float()  # [B, H, L, D]
    x1, x2 = xf.chunk(2, dim=-1)  # [B, H, L, D/2] each
    rotated = torch.cat((-x2, x1), dim=-1)  # [B, H, L, D]
    return (xf * cos + rotated * sin).to(x.dtype)


class SelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, cfg.d_model, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: tuple[KVCache, int, int] | None = None,
    ) -> torch.Tensor:
        """``cache = (kv_cache, layer, position)``: write this call's keys/values there and attend to all of them."""
        b, n, _ = x.shape
        hd = self.cfg.head_dim
        q = self.q_proj(x).view(b, n, self.cfg.n_heads, hd).transpose(1, 2)  # [B, H, L, hd]
        k = self.k_proj(x).view(b, n, self.cfg.n_kv_heads, hd).transpose(1, 2)  # [B, Hkv, L, hd]
        v = self.v_proj(x).view(b, n, self.cfg.n_kv_heads, hd).transpose(1, 2)  # [B, Hkv, L, hd]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        causal = self.cfg.causal
        if cache is not None:
            kv_cache, layer, position = cache
            k, v = kv_cache.write(layer, position, k, v)  # [B, Hkv, Lk, hd] every cached key
            causal = False  # a causal model gets its (absolute-position) causal mask in ``mask``
        y = attention(q, k, v, mask, causal=causal, backend=self.cfg.attention_backend)  # [B, H, L, hd]
        return self.o_proj(y.transpose(1, 2).reshape(b, n, self.cfg.n_heads * hd))  # [B, L, d]


class SwiGLU(nn.Module):
    """down( SiLU(gate x) ⊙ up x ). In the published LLaDA names: gate = ff_proj, up = up_proj, down = ff_out."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # [B, L, d]


class Block(nn.Module):
    """Pre-norm residual block: x + Attn(n(x)), then + MLP(n'(x))."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = SelfAttention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: tuple[KVCache, int, int] | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, cache)  # [B, L, d]
        return x + self.mlp(self.mlp_norm(x))  # [B, L, d]


class DiffusionTransformer(nn.Module):
    """Mask predictor p_theta(x_0 | x_t): token ids (or embeddings) [B, L] -> logits [B, L, V].

    Attributes:
        config: the :class:`TransformerConfig`.
        gradient_checkpointing: recompute each block in backward during training (saves activation memory).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = False
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.reset_parameters()

    # ------------------------------------------------------------------ construction
    def reset_parameters(self) -> None:
        """N(0, init_std) weights; residual output projections scaled by 1/sqrt(2 n_layers) (GPT-2); norms = 1."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if p.device.type == "meta":
                continue
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.config.n_layers))
            else:
                nn.init.normal_(p, 0.0, std)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the input embedding with the output head when ``config.tie_embeddings``."""
        if self.config.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    # ------------------------------------------------------------------ conveniences
    @property
    def mask_id(self) -> int:
        """Id of the [MASK] token."""
        if self.config.mask_token_id is None:
            raise UserError("this model has no mask token (it was built as an autoregressive baseline)")
        return self.config.mask_token_id

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings [B, L, d] for ids [B, L] (to build multimodal ``inputs_embeds``)."""
        return self.embed(input_ids)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    # ------------------------------------------------------------------ forward
    supports_kv_cache = True  #: ``generate(cache=...)`` may pass ``kv_cache=`` / ``cache_position=``

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        cache_position: int = 0,
        logits_slice: slice | None = None,
    ) -> torch.Tensor:
        """Logits [B, L, V] (or [B, len(logits_slice), V]).

        Args:
            input_ids: LongTensor [B, L]; or
            inputs_embeds: [B, L, d] (e.g. image/audio prefix concatenated with ``embed_tokens(ids)``).
            attention_mask: [B, Lk] padding mask (1 = real token; padded keys are ignored, positions are
                ``cumsum - 1``), or a bool mask [B, 1|H, L, Lk] (True = may attend), e.g.
                :func:`~maskzoo.core.attention.block_diagonal_mask` for packed sequences. ``Lk = L`` without a
                cache; with a cache it covers every key position after this call's write (HF convention).
            position_ids: LongTensor [B, L] or [L]; overrides the default positions.
            kv_cache: a :class:`~maskzoo.core.kv_cache.KVCache`; this call's keys/values are written into it at
                positions ``[cache_position, cache_position + L)`` and the queries attend to every cached key.
            cache_position: where the input sits in the cached sequence (its first absolute position).
            logits_slice: compute the output layer only on these input positions (the decoded ones).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if input_ids is not None:
            self._check_ids(input_ids)
            x = self.embed(input_ids)  # [B, L, d]
        else:
            x = inputs_embeds  # [B, L, d]
        b, n, _ = x.shape
        start = int(cache_position) if kv_cache is not None else 0
        if start + n > self.config.max_seq_len:
            raise UserError(
                f"input of {start + n} tokens is longer than the model's context of {self.config.max_seq_len}"
            )
        mask, position_ids = self._mask_and_positions(attention_mask, position_ids, b, n, start, kv_cache, x.device)
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta)  # [B, 1, L, hd]

        use_ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if kv_cache is not None:
                x = block(x, cos, sin, mask, (kv_cache, i, start))  # [B, L, d]
            elif use_ckpt:
                x = checkpoint(block, x, cos, sin, mask, use_reentrant=False)  # [B, L, d]
            else:
                x = block(x, cos, sin, mask)  # [B, L, d]
        if logits_slice is not None:
            x = x[:, logits_slice]  # [B, L', d] only the decoded positions go through the output layer
        return self.lm_head(self.norm(x))  # [B, L', V]

    def _mask_and_positions(
        self,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        b: int,
        n: int,
        start: int,
        kv_cache: KVCache | None,
        device: torch.device,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Boolean attention mask [B|1, 1|H, L|1, Lk] (or None) and position ids [B, L] of the input positions."""
        key_len = n if kv_cache is None else max(kv_cache.length, start + n)
        mask = None
        if attention_mask is not None and attention_mask.dim() == 2:
            if attention_mask.shape[1] != key_len:
                raise UserError(
                    f"attention_mask covers {attention_mask.shape[1]} positions; expected {key_len} "
                    "(the input, plus every cached position when a kv_cache is given)"
                )
            if position_ids is None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, start : start + n]  # [B, L]
            if not bool(attention_mask.bool().all()):
                mask = padding_mask(attention_mask)  # [B, 1, 1, Lk]
        elif attention_mask is not None:
            mask = attention_mask  # [B, 1|H, L, Lk] bool
        if self.config.causal and kv_cache is not None:
            i = torch.arange(start, start + n, device=device)[:, None]  # [L, 1] absolute query positions
            causal = (torch.arange(key_len, device=device)[None, :] <= i)[None, None]  # [1, 1, L, Lk]
            mask = causal if mask is None else mask & causal
        if position_ids is None:
            position_ids = torch.arange(start, start + n, device=device)  # [L]
        if position_ids.dim() == 1:
            position_ids = position_ids[None].expand(b, n)  # [B, L]
        return mask, position_ids

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        if input_ids.dtype not in (torch.long, torch.int, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
        if input_ids.device.type == "cpu" and input_ids.numel():  # no device sync on GPU
            lo, hi = int(input_ids.min()), int(input_ids.max())
            if lo < 0 or hi >= self.config.vocab_size:
                bad = lo if lo < 0 else hi
                raise UserError(f"token id {bad} is outside the model vocabulary [0, {self.config.vocab_size})")
