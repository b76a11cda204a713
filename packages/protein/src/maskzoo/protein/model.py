"""ESM-2 as a masked-diffusion denoiser (DSM), with attention through ``maskzoo.core.attention``.

Architecture (Lin et al., "Evolutionary-scale prediction of atomic-level protein structure with a language model",
Science 2023; fair-esm ``esm/model/esm2.py``): a pre-LayerNorm BERT encoder with rotary position embeddings
(Su et al., RoFormer, arXiv:2104.09864) on queries and keys, GELU MLP of width 4d, a final LayerNorm and the
RoBERTa LM head ``W_e^T LN(gelu(W x + b)) + c`` tied to the token embedding ``W_e``:

    h_0 = E[x]                                    (optionally token dropout, below)
    h_l = h_{l-1} + Attn(LN(h_{l-1}))            q, k rotated by position, softmax(q k^T / sqrt(d_h)) v
    h_l = h_l + fc2(gelu(fc1(LN(h_l))))
    logits = LN_head(gelu(dense(LN_after(h_L)))) E^T + bias         [B, L, 33]

Parameter names are fair-esm's (``embed_tokens``, ``layers.{i}.self_attn.{q,k,v,out}_proj``,
``layers.{i}.self_attn.rot_emb.inv_freq``, ``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``,
``emb_layer_norm_after``, ``lm_head.{dense,layer_norm,weight,bias}``), so a fair-esm state dict loads strictly and
the logits equal fair-esm's ``ESM2.forward`` within float tolerance. Only the attention kernel differs: fair-esm
runs its own ``bmm + softmax`` path whenever rotary embeddings are on; here attention is
``maskzoo.core.attention.attention`` (torch SDPA on CPU, xformers on CUDA when importable).

Token dropout and diffusion
---------------------------
ESM-2 was trained with BERT masking (15% of positions, 80% of those replaced by <mask>) and *token dropout*:
the embedding of every <mask> is zeroed and the remaining embeddings are rescaled by
``(1 - 0.15 * 0.8) / (1 - r)`` where r is the observed fraction of <mask> among non-padding tokens. Under a
diffusion schedule r ranges over (0, 1): at r = 0.99 the factor is 88, and with every residue masked only <cls>
and <eos> survive, multiplied by 0.88 (n + 2) / 2 (x66 at n = 150). The network never saw such inputs.

DSM (Hallee et al., arXiv:2506.08293; Gleghorn-Lab/DSM, whose FastESM embedding module applies no token dropout)
trains and samples *without* token dropout: <mask> is an ordinary token with a learned embedding and no rescaling.
maskzoo does the same: ``ESM2Config.token_dropout`` defaults to False for DSM models, in training and sampling
alike. Loading a fair-esm ESM-2 ``.pt`` keeps the checkpoint's ``token_dropout=True`` so its logits equal
fair-esm's; ``dsm_from_esm2`` turns it off for diffusion fine-tuning and zeroes the <mask> embedding row, so the
starting network sees exactly what token dropout fed it (a zero vector at masked positions) minus the rescale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from maskzoo.core.attention import attention, block_diagonal_mask, padding_mask
from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import ProteinAlphabet, get_alphabet

#: Inclusive bounds of the integer fields of a loadable config (the largest published ESM-2 is 48 x 5120 x 40).
CONFIG_RANGES = {"num_layers": (0, 256), "embed_dim": (2, 16384), "attention_heads": (1, 512),
                 "max_seq_len": (3, 1 << 20), "vocab_size": (33, 33)}


def esm2_param_count(cfg: dict) -> int:
    """Parameters implied by config fields, without allocating: per layer 12 d^2 + 13 d, plus V d + d^2 + 6 d + V."""
    d, n, v = int(cfg.get("embed_dim", 0)), int(cfg.get("num_layers", 0)), int(cfg.get("vocab_size", 33))
    return n * (12 * d * d + 13 * d) + v * d + d * d + 6 * d + v


#: fair-esm's token-dropout constant: BERT mask rate 0.15 x 80% replaced by <mask>.
ESM_MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass
class ESM2Config:
    """Architecture arguments of an ESM-2 denoiser (fair-esm's constructor arguments plus a context length).

    Published sizes: t6_8M (6, 320, 20), t12_35M (12, 480, 20), t30_150M (30, 640, 20), t33_650M (33, 1280, 20),
    t36_3B (36, 2560, 40), t48_15B (48, 5120, 40).
    """

    num_layers: int = 6
    embed_dim: int = 320
    attention_heads: int = 20
    token_dropout: bool = False
    max_seq_len: int = (
        1026  # ESM-2 was trained on crops of 1024 tokens incl. <cls>/<eos>; rotary has no hard limit
    )
    vocab_size: int = 33

    def __post_init__(self) -> None:
        if self.embed_dim % self.attention_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not divisible by attention_heads {self.attention_heads}"
            )
        if (self.embed_dim // self.attention_heads) % 2:
            raise ValueError("rotary embeddings need an even head dimension")

    @property
    def tie_embeddings(self) -> bool:
        """ESM-2's LM head always reuses the token embedding (read by ``maskzoo.core.checkpoint``)."""
        return True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ESM2Config:
        """A config from ``config.json`` fields; every bad field is a one-line ``UserError`` naming it (types and
        sizes are checked by ``maskzoo.core.checkpoint`` with ``esm2_param_count`` before this runs)."""
        from maskzoo.core.config import validate_config

        validate_config(cls, d, "config", ranges=CONFIG_RANGES)
        try:
            return cls(**d)
        except ValueError as e:
            raise UserError(f"config: {e}") from None


def segment_positions(segments: torch.Tensor) -> torch.Tensor:
    """Index of each token within its run of equal ``segments`` [B, L] (0 at every segment start) -> [B, L]."""
    idx = torch.arange(segments.shape[1], device=segments.device).expand_as(segments)  # [B, L]
    starts = torch.ones_like(segments, dtype=torch.bool)  # [B, L]
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    first = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values  # [B, L] start of the run
    return idx - first


class RotaryEmbedding(nn.Module):
    """RoPE with fair-esm's layout: ``inv_freq`` buffer, rotate-half convention, cos/sin cached per length."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))  # [D/2]
        self.register_buffer("inv_freq", inv_freq)
        self._cache: tuple[int, torch.device, torch.dtype, torch.Tensor, torch.Tensor] | None = None

    def cos_sin(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cache
        if c is None or c[0] != n or c[1] != device or c[2] != dtype:
            t = torch.arange(n, device=device, dtype=self.inv_freq.dtype)
            freqs = torch.outer(t, self.inv_freq.to(device))  # [L, D/2]
            emb = torch.cat((freqs, freqs), dim=-1)  # [L, D]
            c = (n, device, dtype, emb.cos().to(dtype), emb.sin().to(dtype))
            self._cache = c
        return c[3], c[4]

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x [B, H, L, D] rotated: x cos + rotate_half(x) sin, rotate_half(x1, x2) = (-x2, x1)."""
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary q/k; fair-esm parameter names, core attention kernel."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.rot_emb = RotaryEmbedding(self.head_dim)
        self.backend: str | None = None  # None = the core's default (auto-detected once)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``positions`` [B, L] (packed rows: the index within each segment) or None (0..L-1 in every row)."""
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)  # [B, H, L, Dh]
        k = self.k_proj(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)  # [B, H, L, Dh]
        v = self.v_proj(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)  # [B, H, L, Dh]
        cos, sin = self.rot_emb.cos_sin(L, x.device, q.dtype)  # [L, Dh]
        if positions is not None:
            cos, sin = cos[positions].unsqueeze(1), sin[positions].unsqueeze(1)  # [B, 1, L, Dh]
        q, k = RotaryEmbedding.apply(q, cos, sin), RotaryEmbedding.apply(k, cos, sin)
        o = attention(q, k, v, mask, backend=self.backend)  # [B, H, L, Dh]
        return self.out_proj(o.transpose(1, 2).reshape(B, L, -1))  # [B, L, D]


class TransformerLayer(nn.Module):
    """Pre-LN block: x + Attn(LN(x)), then x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), mask, positions)  # [B, L, D]
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))  # [B, L, D]


class LMHead(nn.Module):
    """RoBERTa head tied to the embedding: ``LN(gelu(dense(x))) @ W_e^T + bias``."""

    def __init__(self, dim: int, vocab: int, weight: nn.Parameter) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.layer_norm = nn.LayerNorm(dim)
        self.weight = weight  # the embedding matrix [V, D]: registered here too, as in fair-esm
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.layer_norm(F.gelu(self.dense(x))), self.weight) + self.bias  # [B, L, V]


class ESM2(nn.Module):
    """ESM-2 denoiser: ``model(ids [B, L]) -> logits [B, L, 33]`` (fair-esm architecture and alphabet)."""

    def __init__(self, config: ESM2Config, alphabet: ProteinAlphabet | None = None) -> None:
        super().__init__()
        self.config = config
        self.alphabet = alphabet or get_alphabet()
        if config.vocab_size != len(self.alphabet):
            raise ValueError(f"vocab_size {config.vocab_size} != ESM alphabet size {len(self.alphabet)}")
        d = config.embed_dim
        self.embed_tokens = nn.Embedding(config.vocab_size, d, padding_idx=self.alphabet.pad_id)
        self.layers = nn.ModuleList(
            TransformerLayer(d, config.attention_heads) for _ in range(config.num_layers)
        )
        self.emb_layer_norm_after = nn.LayerNorm(d)
        self.lm_head = LMHead(d, config.vocab_size, self.embed_tokens.weight)
        self.gradient_checkpointing = False
        self.reset_parameters()

    # -- identity -------------------------------------------------------------------------------------------------
    @property
    def mask_id(self) -> int:
        return self.alphabet.mask_id

    @property
    def architecture(self) -> str:
        return "esm2"

    def tie_weights(self) -> None:
        """Point the LM head at the embedding matrix again (after ``load_state_dict(assign=True)``)."""
        self.lm_head.weight = self.embed_tokens.weight

    def set_attention_backend(self, backend: str | None) -> None:
        """Route every layer through ``maskzoo.core.attention`` backend ``backend`` (None = core default)."""
        for layer in self.layers:
            layer.self_attn.backend = backend

    def reset_parameters(self, std: float = 0.02) -> None:
        """BERT initialisation (normal(0, 0.02) weights, zero biases, unit LayerNorms; fairseq ``init_bert_params``);
        the <pad> embedding row is zero."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)
                with torch.no_grad():
                    m.weight[self.alphabet.pad_id].zero_()
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.lm_head.bias)

    # -- forward --------------------------------------------------------------------------------------------------
    def _embed(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Token embeddings [B, L, D]; fair-esm's token dropout when enabled; padding rows zeroed."""
        x = self.embed_tokens(ids)  # [B, L, D]
        if self.config.token_dropout:
            is_mask = ids == self.mask_id  # [B, L]
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            ratio = is_mask.sum(-1).to(x.dtype) / keep.sum(-1).to(x.dtype)  # [B] observed mask ratio r
            x = x * ((1 - ESM_MASK_RATIO_TRAIN) / (1 - ratio))[:, None, None]
        return x * keep.unsqueeze(-1).to(x.dtype)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        repr_layers: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Final representation [B, L, D] (after ``emb_layer_norm_after``) and the requested layers.

        Layer numbering follows fair-esm: 0 = embeddings, i = output of block i, ``num_layers`` = the final,
        layer-normed representation. ``attention_mask`` [B, L] (1 = token) defaults to ``input_ids != <pad>``.

        Packed rows: an ``attention_mask`` with values above 1 numbers the segments of each row (1, 2, ...; 0 =
        padding). Tokens then attend only within their segment (``block_diagonal_mask``) and rotary positions
        restart at 0 at each segment, so every segment gets exactly the output it would get alone in its own row.
        """
        keep = (
            (input_ids != self.alphabet.pad_id) if attention_mask is None else attention_mask.bool()
        )  # [B, L]
        x = self._embed(input_ids, keep)  # [B, L, D]
        positions = None
        if attention_mask is not None and bool((attention_mask > 1).any()):
            segments = attention_mask.long() - 1  # [B, L], -1 = padding
            mask = block_diagonal_mask(segments)  # [B, 1, L, L]
            positions = segment_positions(segments)  # [B, L]
        else:
            mask = None if bool(keep.all()) else padding_mask(keep)  # [B, 1, L, L] or None
        reps: dict[int, torch.Tensor] = {}
        if 0 in repr_layers:
            reps[0] = x
        for i, layer in enumerate(self.layers):
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, positions, use_reentrant=False)
            else:
                x = layer(x, mask, positions)
            if i + 1 in repr_layers:
                reps[i + 1] = x
        x = self.emb_layer_norm_after(x)  # [B, L, D]
        if len(self.layers) in repr_layers:
            reps[len(self.layers)] = x
        return x, reps

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **_: object,
    ) -> torch.Tensor:
        """Logits [B, L, 33] for ESM-alphabet tokens ``input_ids`` [B, L]."""
        x, _ = self.hidden_states(input_ids, attention_mask)
        return self.lm_head(x)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied embedding counted once by .parameters()


def dsm_from_esm2(model: ESM2) -> ESM2:
    """Prepare a fair-esm ESM-2 for diffusion training: token dropout off, <mask> embedding row zeroed.

    With the row at zero the first forward pass sees, at every masked position, the zero vector that token dropout
    used to feed it; only the global 0.88 / (1 - r) rescale is gone (see the module docstring). A model that was
    trained without token dropout (a DSM model) learned its <mask> row and keeps it.
    """
    if model.config.token_dropout:
        model.config.token_dropout = False
        with torch.no_grad():
            model.embed_tokens.weight[model.mask_id].zero_()
    return model
