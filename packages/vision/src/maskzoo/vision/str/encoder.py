"""Image encoders for 32x128 text crops: an SVTRv2-style three-stage encoder and a timm backbone.

SVTRv2 (Du et al., "SVTRv2: CTC Beats Encoder-Decoder Models in Scene Text Recognition", ICCV 2025) keeps the
width resolution and shrinks only the height after the stem::

    image [B, C, 32, 128]
      stem: two 3x3 convs, stride 2            -> [B, d0, 8, 32]
      stage 1: local mixing (depthwise conv)   -> [B, d0, 8, 32]
      3x3 conv, stride (2, 1)                  -> [B, d1, 4, 32]
      stage 2: global self-attention blocks    -> [B, d1, 4, 32]
      3x3 conv, stride (2, 1)                  -> [B, d2, 2, 32]
      stage 3: global self-attention blocks    -> [B, d2, 2, 32]
    features [B, 64, d2] (row-major tokens) for the decoder's cross-attention

Presets: ``base`` dims (128, 256, 384) as in the paper's base size, and smaller ``small``/``tiny`` for CPU.
:class:`TimmEncoder` wraps any timm feature backbone (``features_only``) for users who prefer one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskzoo.core.errors import UserError


@dataclass(frozen=True)
class SVTRv2Preset:
    dims: tuple[int, int, int]
    depths: tuple[int, int, int]
    heads: tuple[int, int, int]


PRESETS: dict[str, SVTRv2Preset] = {
    "tiny": SVTRv2Preset(dims=(48, 96, 160), depths=(1, 2, 2), heads=(2, 3, 5)),
    "small": SVTRv2Preset(dims=(64, 128, 256), depths=(2, 3, 3), heads=(2, 4, 8)),
    "base": SVTRv2Preset(dims=(128, 256, 384), depths=(3, 6, 3), heads=(4, 8, 12)),
}


@lru_cache(maxsize=32)
def sincos_1d(n: int, dim: int) -> Tensor:
    """Fixed sinusoidal encodings ``[n, dim]`` of positions 0..n-1 (Vaswani et al. 2017, sec. 3.5)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]  # [n, 1]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # [dim/2]
    out = torch.zeros(n, dim)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


@lru_cache(maxsize=32)
def sincos_2d(h: int, w: int, dim: int) -> Tensor:
    """Fixed 2-D encodings ``[h * w, dim]`` (row-major): half the channels encode the row, half the column, so
    the decoder's cross-attention can find the i-th character by its column."""
    half = dim // 2
    rows = sincos_1d(h, half)[:, None, :].expand(h, w, half)  # [h, w, dim/2]
    cols = sincos_1d(w, dim - half)[None, :, :].expand(h, w, dim - half)  # [h, w, dim - dim/2]
    return torch.cat([rows, cols], dim=-1).reshape(h * w, dim)


def add_sincos_2d(t: Tensor, h: int, w: int) -> Tensor:
    """``t + sincos_2d`` for tokens ``[B, h*w, C]`` (computed, not stored: checkpoints hold no fixed tables)."""
    return t + sincos_2d(h, w, t.shape[-1]).to(t.device, t.dtype)[None]


def _conv_bn(c_in: int, c_out: int, stride: int | tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class ConvMixerBlock(nn.Module):
    """Local mixing: depthwise 3x3 conv + pointwise MLP, each residual (a ConvNeXt-like block)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W]
        return x + self.mlp(self.norm(self.dw(x)))


class AttentionBlock(nn.Module):
    """Global mixing: pre-LN multi-head self-attention over all H*W tokens + MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:  # [B, N, C]
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # [B, h, N, C/h]
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))


class SVTRv2Encoder(nn.Module):
    """Three-stage SVTRv2-style encoder; ``forward(images [B, C, 32, 128]) -> [B, 64, d2]``."""

    def __init__(self, preset: str = "small", in_chans: int = 1, image_size: tuple[int, int] = (32, 128)) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise UserError(f"unknown encoder preset {preset!r}; choose one of {', '.join(PRESETS)}")
        p = PRESETS[preset]
        d0, d1, d2 = p.dims
        self.out_dim = d2
        self.stem = nn.Sequential(_conv_bn(in_chans, d0 // 2, 2), _conv_bn(d0 // 2, d0, 2))
        self.stage1 = nn.Sequential(*[ConvMixerBlock(d0) for _ in range(p.depths[0])])
        self.down1 = _conv_bn(d0, d1, (2, 1))
        self.stage2 = nn.ModuleList([AttentionBlock(d1, p.heads[1]) for _ in range(p.depths[1])])
        self.down2 = _conv_bn(d1, d2, (2, 1))
        self.stage3 = nn.ModuleList([AttentionBlock(d2, p.heads[2]) for _ in range(p.depths[2])])
        h, w = image_size[0] // 8, image_size[1] // 4
        # fixed 2-D sinusoids (added in forward) + learned corrections, for the 4x32 and the 2x32 grids
        self.pos2 = nn.Parameter(torch.zeros(1, h * w, d1))
        self.pos3 = nn.Parameter(torch.zeros(1, (h // 2) * w, d2))
        nn.init.trunc_normal_(self.pos2, std=0.02)
        nn.init.trunc_normal_(self.pos3, std=0.02)
        self.norm = nn.LayerNorm(d2)

    def forward(self, images: Tensor) -> Tensor:
        x = self.stage1(self.stem(images))  # [B, d0, 8, 32]
        x = self.down1(x)  # [B, d1, 4, 32]
        b, c, h, w = x.shape
        t = add_sincos_2d(x.flatten(2).transpose(1, 2), h, w) + self.pos2  # [B, 128, d1]
        for blk in self.stage2:
            t = blk(t)
        x = self.down2(t.transpose(1, 2).reshape(b, c, h, w))  # [B, d2, 2, 32]
        t = add_sincos_2d(x.flatten(2).transpose(1, 2), h // 2, w) + self.pos3  # [B, 64, d2]
        for blk in self.stage3:
            t = blk(t)
        return self.norm(t)  # [B, 64, d2]


class TimmEncoder(nn.Module):
    """A timm backbone (``features_only``; its deepest feature map) as a token sequence ``[B, h*w, C]``.

    No weights are downloaded: pass ``weights`` (a local file) to start from pre-trained weights.
    """

    def __init__(self, name: str, in_chans: int = 1, image_size: tuple[int, int] = (32, 128),
                 weights: str | None = None) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:  # pragma: no cover - timm is a dependency of maskzoo-vision
            raise UserError("the timm encoder needs timm: pip install timm") from None
        try:
            self.body = timm.create_model(name, pretrained=False, features_only=True, in_chans=in_chans)
        except RuntimeError as e:
            raise UserError(f"timm model {name!r}: {str(e).splitlines()[0]}") from None
        if weights:
            from safetensors.torch import load_file

            self.body.load_state_dict(load_file(weights))  # strict: every tensor must match
        with torch.no_grad():
            probe = self.body(torch.zeros(1, in_chans, *image_size))[-1]  # [1, C, h, w]
        self.out_dim = probe.shape[1]
        self.pos = nn.Parameter(torch.zeros(1, probe.shape[2] * probe.shape[3], self.out_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(self, images: Tensor) -> Tensor:
        x = self.body(images)[-1]  # [B, C, h, w]
        h, w = x.shape[-2:]
        return self.norm(add_sincos_2d(x.flatten(2).transpose(1, 2), h, w) + self.pos)  # [B, h*w, C]


def build_encoder(name: str, in_chans: int = 1, image_size: tuple[int, int] = (32, 128),
                  weights: str | None = None) -> nn.Module:
    """``svtrv2-<preset>`` (tiny, small, base) or ``timm:<model name>``."""
    if name.startswith("timm:"):
        return TimmEncoder(name[5:], in_chans, image_size, weights)
    if name.startswith("svtrv2-"):
        return SVTRv2Encoder(name[7:], in_chans, image_size)
    raise UserError(f"unknown encoder {name!r}; use svtrv2-tiny, svtrv2-small, svtrv2-base or timm:<name>")
