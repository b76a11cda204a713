"""LLaVA-NeXT "anyres" tiling as LLaDA-V uses it (``image_aspect_ratio = anyres_max_4``, ``spatial_unpad``).

A published LLaDA-V model sees an image as a *base view* (the whole image squashed to the tower's square input)
plus a grid of *tiles* of a higher-resolution copy (Liu et al. 2024, LLaVA-NeXT; Li et al. 2024,
LLaVA-OneVision sec. 3):

1. candidates: grid shapes ``(c, r)`` from ``image_grid_pinpoints`` (``"(1x1),...,(6x6)"`` = every grid from
   1x1 to 6x6) times the tile side ``S`` -> pixel resolutions ``(c S, r S)``;
2. best resolution: the candidate with the largest *effective* area ``min(w' h', W H)`` after an
   aspect-preserving downscale of the ``W x H`` image into it, ties broken by the least wasted area;
3. the image is resized to fit that resolution (aspect kept) and centred on black; cut into ``r x c`` tiles of
   ``S x S``, row-major;
4. tower + projector on ``[base, tiles...]`` -> ``[1 + r c, T, D]`` with ``T = t x t`` patch features;
5. the tile features form one map ``[D, r t, c t]``; the rows / columns that only show padding are cut away
   (``unpad``); if the map has more than ``max_patches * T`` positions by a factor ``f^2 > 1.1^2`` it is
   resized bilinearly to ``(h // f, w // f)``; a learned ``image_newline`` closes every row;
6. the image's features are ``[base (T), map rows with newlines]`` -> ``[T + h' (w' + 1), D]``.

So the number of placeholder tokens depends on the image's size, which :func:`anyres_token_count` gives
without running the tower.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from maskzoo.core.errors import UserError

Size = tuple[int, int]  # (width, height), as PIL


@dataclass(frozen=True)
class AnyRes:
    """Tiling settings: candidate ``resolutions`` in pixels ``(width, height)`` and ``max_patches``
    (``anyres_max_N``; None for plain ``anyres``, which never downsamples)."""

    resolutions: tuple[Size, ...]
    max_patches: int | None = None

    def to_dict(self) -> dict:
        return {"resolutions": [list(r) for r in self.resolutions], "max_patches": self.max_patches}

    @classmethod
    def from_dict(cls, d: dict) -> AnyRes:
        return cls(tuple((int(w), int(h)) for w, h in d["resolutions"]), d.get("max_patches"))


def parse_grid_pinpoints(pinpoints: str | Sequence, tile: int) -> tuple[Size, ...]:
    """``"(1x1),...,(6x6)"`` -> every grid between the first and last shape, times ``tile`` pixels;
    a list ``[[w, h], ...]`` (or its string form) -> those pixel resolutions."""
    if isinstance(pinpoints, str) and "x" in pinpoints:
        shapes = re.findall(r"\((\d+)x(\d+)\)", pinpoints)
        if not shapes:
            raise UserError(f"image_grid_pinpoints {pinpoints!r}: expected '(1x1),...,(6x6)'")
        (c0, r0), (c1, r1) = (tuple(map(int, s)) for s in (shapes[0], shapes[-1]))
        return tuple((c * tile, r * tile) for c in range(c0, c1 + 1) for r in range(r0, r1 + 1))
    if isinstance(pinpoints, str):  # "[[336, 672], [672, 336]]"
        pinpoints = re.findall(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]", pinpoints)
    out = tuple((int(w), int(h)) for w, h in pinpoints)
    if not out:
        raise UserError(f"image_grid_pinpoints {pinpoints!r}: no resolutions")
    return out


def from_llava_config(cfg: dict, tile: int) -> AnyRes | None:
    """The tiling of a LLaVA / LLaDA-V ``config.json`` (None when images enter as one view)."""
    aspect = str(cfg.get("image_aspect_ratio") or "square")
    if aspect != "anyres" and not aspect.startswith("anyres_max"):
        return None
    if "unpad" not in str(cfg.get("mm_patch_merge_type", "")):
        raise UserError(f"image_aspect_ratio {aspect} with mm_patch_merge_type "
                        f"{cfg.get('mm_patch_merge_type')!r} is not supported (LLaDA-V uses spatial_unpad)")
    if cfg.get("image_grid_pinpoints") is None:
        raise UserError(f"image_aspect_ratio {aspect} needs image_grid_pinpoints")
    m = re.fullmatch(r"anyres_max_(\d+)", aspect)
    return AnyRes(parse_grid_pinpoints(cfg["image_grid_pinpoints"], tile), int(m.group(1)) if m else None)


def select_best_resolution(size: Size, candidates: Sequence[Size]) -> Size:
    """The candidate keeping most of the image's pixels after an aspect-preserving fit; ties: least waste."""
    w0, h0 = size
    best, best_eff, best_waste = candidates[0], -1, math.inf
    for w, h in candidates:
        scale = min(w / w0, h / h0)
        eff = min(int(w0 * scale) * int(h0 * scale), w0 * h0)
        waste = w * h - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (w, h), eff, waste
    return best


def resize_and_pad(image: Image.Image, target: Size) -> Image.Image:
    """Fit ``image`` into ``target`` keeping its aspect (the filled side exact, the other rounded up and capped)
    and centre it on black."""
    w0, h0 = image.size
    tw, th = target
    sw, sh = tw / w0, th / h0
    if sw < sh:
        nw, nh = tw, min(math.ceil(h0 * sw), th)
    else:
        nw, nh = min(math.ceil(w0 * sh), tw), th
    canvas = Image.new("RGB", (tw, th), (0, 0, 0))
    canvas.paste(image.resize((nw, nh), Image.Resampling.BICUBIC), ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def views(image: Image.Image, tile: int, anyres: AnyRes) -> tuple[list[Image.Image], Size]:
    """``[base view, tiles row-major...]`` and the grid ``(columns, rows)``."""
    image = image.convert("RGB")
    w, h = select_best_resolution(image.size, anyres.resolutions)
    padded = resize_and_pad(image, (w, h))
    tiles = [padded.crop((x, y, x + tile, y + tile)) for y in range(0, h, tile) for x in range(0, w, tile)]
    base = image.resize((tile, tile), Image.Resampling.BICUBIC)
    return [base, *tiles], (w // tile, h // tile)


def unpad_shape(height: int, width: int, size: Size) -> tuple[int, int, int, int]:
    """Rows ``[top, bottom)`` and columns ``[left, right)`` of a ``height x width`` feature map that show the
    image of ``size`` (the rest shows the black padding of :func:`resize_and_pad`)."""
    w0, h0 = size
    if w0 / h0 > width / height:  # padding was added above and below
        pad = (height - int(h0 * (width / w0))) // 2
        return pad, height - pad, 0, width
    pad = (width - int(w0 * (height / h0))) // 2
    return 0, height, pad, width - pad


def merged_map_shape(grid: Size, side: int, size: Size, max_patches: int | None) -> tuple[int, int]:
    """(rows, columns) of the tile map after unpadding and the ``anyres_max`` downsampling."""
    cols, rows = grid
    top, bottom, left, right = unpad_shape(rows * side, cols * side, size)
    h, w = bottom - top, right - left
    if max_patches is not None:
        f = math.sqrt(h * w / (max_patches * side * side))
        if f > 1.1:
            h, w = int(h // f), int(w // f)
    return h, w


def anyres_token_count(size: Size, tile: int, side: int, anyres: AnyRes) -> int:
    """Placeholder tokens of one image of ``size``: ``side^2`` (base) + ``rows (columns + 1)`` (map + newlines)."""
    w, h = select_best_resolution(size, anyres.resolutions)
    rows, cols = merged_map_shape((w // tile, h // tile), side, size, anyres.max_patches)
    return side * side + rows * (cols + 1)


def merge(features: torch.Tensor, grid: Size, size: Size, newline: torch.Tensor, max_patches: int | None,
          ) -> torch.Tensor:
    """Projected features of ``[base, tiles...]`` ``[1 + r c, t t, D]`` -> the image's sequence ``[N, D]``."""
    cols, rows = grid
    n, T, D = features.shape
    side = math.isqrt(T)
    if side * side != T or n != 1 + rows * cols:
        raise ValueError(f"anyres: {n} views of {T} features do not make a base plus a {rows}x{cols} grid")
    base, tiles = features[0], features[1:]  # [T, D], [r c, T, D]
    fmap = tiles.view(rows, cols, side, side, D).permute(4, 0, 2, 1, 3).reshape(D, rows * side, cols * side)
    top, bottom, left, right = unpad_shape(rows * side, cols * side, size)
    fmap = fmap[:, top:bottom, left:right]  # [D, h, w]
    h, w = merged_map_shape(grid, side, size, max_patches)
    if (h, w) != tuple(fmap.shape[1:]):
        fmap = F.interpolate(fmap[None], size=[h, w], mode="bilinear")[0]  # [D, h', w']
    nl = newline.to(fmap.dtype)[:, None, None].expand(D, h, 1)  # [D, h', 1]
    fmap = torch.cat([fmap, nl], dim=-1)  # [D, h', w' + 1]
    return torch.cat([base, fmap.flatten(1).transpose(0, 1)], dim=0)  # [T + h' (w' + 1), D]
