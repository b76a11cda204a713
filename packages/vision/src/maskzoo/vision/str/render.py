"""A synthetic word-crop renderer: words from real text and random strings drawn in the fonts that ship
inside matplotlib's wheel (DejaVu, STIX), with random size, colours, background, curvature, rotation,
perspective, blur, resolution loss and noise (torchvision transforms).

``SyntheticWords(seed)[i]`` is a pure function of ``(seed, i)``: an unlimited, reproducible stream of
``(RGB PIL image, label)`` pairs. The augmentations themselves are torchvision ``transforms.v2``; only the text
drawing (PIL) and the arc warp (one ``grid_sample``) are written here.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from maskzoo.core.errors import UserError

_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
_ALNUM = string.digits + string.ascii_letters
_PRINTABLE = "".join(chr(c) for c in range(33, 127))


@lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    """The TrueType fonts of matplotlib's wheel used for rendering (matplotlib is imported lazily)."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("synthetic text rendering needs matplotlib's fonts: pip install 'maskzoo-vision[str-train]'") from None
    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = tuple(root / f for f in _FONT_FILES if (root / f).is_file())
    if not found:
        raise UserError(f"no DejaVu/STIX fonts found in {root}")
    return found


@lru_cache(maxsize=256)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def words_from_text(text: str, max_len: int = 25) -> list[str]:
    """Distinct whitespace-separated words of ``text`` (printable ASCII, 1..max_len characters)."""
    words = {w for w in text.split() if 0 < len(w) <= max_len and all(c in _PRINTABLE for c in w)}
    return sorted(words)


def default_words() -> list[str]:
    """Words of the tiny-Shakespeare corpus shipped with maskzoo-core."""
    from importlib.resources import files

    text = (files("maskzoo.core.text") / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return words_from_text(text)


@dataclass
class RenderConfig:
    """Probabilities and ranges of the synthetic crops."""

    p_random_string: float = 0.3
    """label is a random string instead of a corpus word"""
    p_strip_punct: float = 0.7
    font_min: int = 18
    font_max: int = 40
    min_contrast: int = 50
    """smallest |foreground - background| grey-level difference"""
    p_curve: float = 0.2
    p_rotate: float = 0.4
    max_rotate: float = 6.0
    p_perspective: float = 0.3
    p_blur: float = 0.3
    p_lowres: float = 0.3
    p_noise: float = 0.3
    p_jitter: float = 0.5

    def validate(self) -> None:
        probs = [v for k, v in vars(self).items() if k.startswith("p_")]
        if any(not 0 <= p <= 1 for p in probs):
            raise UserError("render: every p_* must be in [0, 1]")
        if not 4 <= self.font_min <= self.font_max:
            raise UserError("render: need 4 <= font_min <= font_max")


def _label(rng: np.random.Generator, words: list[str], cfg: RenderConfig, max_len: int) -> str:
    if rng.random() < cfg.p_random_string or not words:
        n = int(rng.integers(1, 13))
        pool = string.digits if rng.random() < 0.15 else (_ALNUM if rng.random() < 0.8 else _PRINTABLE)
        return "".join(pool[int(j)] for j in rng.integers(0, len(pool), n))
    w = words[int(rng.integers(len(words)))]
    if rng.random() < cfg.p_strip_punct:
        w = re.sub(r"^[^0-9A-Za-z]+|[^0-9A-Za-z]+$", "", w) or w
    r = rng.random()
    w = w.lower() if r < 0.4 else (w.upper() if r < 0.65 else (w.capitalize() if r < 0.9 else w))
    return w[:max_len]


def _colours(rng: np.random.Generator, min_contrast: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    while True:
        bg = rng.integers(0, 256, 3)
        fg = rng.integers(0, 256, 3)
        if abs(int(bg.mean()) - int(fg.mean())) >= min_contrast:
            return tuple(int(v) for v in fg), tuple(int(v) for v in bg)


def _background(rng: np.random.Generator, w: int, h: int, bg: tuple[int, ...]) -> Image.Image:
    base = np.empty((h, w, 3), dtype=np.float32)
    base[:] = bg
    kind = rng.random()
    if kind < 0.3:  # linear gradient
        ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * rng.uniform(10, 40)
        base += ramp
    elif kind < 0.5:  # smooth texture: upsampled noise
        small = rng.normal(0, rng.uniform(5, 25), (max(1, h // 8), max(1, w // 8), 3)).astype(np.float32)
        base += np.asarray(Image.fromarray(np.uint8(np.clip(small + 128, 0, 255))).resize((w, h)), np.float32) - 128
    return Image.fromarray(np.uint8(np.clip(base, 0, 255)))


def _draw(rng: np.random.Generator, text: str, cfg: RenderConfig) -> tuple[Image.Image, tuple[int, ...]]:
    fonts = font_files()
    font = _font(fonts[int(rng.integers(len(fonts)))], int(rng.integers(cfg.font_min, cfg.font_max + 1)))
    left, top, right, bottom = font.getbbox(text)
    tw, th = max(1, right - left), max(1, bottom - top)
    mx, my = int(rng.integers(2, max(3, th // 2))), int(rng.integers(2, max(3, th // 3)))
    fg, bg = _colours(rng, cfg.min_contrast)
    im = _background(rng, tw + 2 * mx, th + 2 * my, bg)
    ImageDraw.Draw(im).text((mx - left, my - top), text, font=font, fill=fg)
    return im, bg


def arc_warp(x: Tensor, amplitude: float) -> Tensor:
    """Bend a crop ``[C, H, W]`` along a parabola: column ``u`` in [-1, 1] moves down by
    ``amplitude * (1 - u^2) - amplitude / 2`` (fractions of the height); borders are replicated."""
    c, h, w = x.shape
    u = torch.linspace(-1, 1, w)
    v = torch.linspace(-1, 1, h)
    shift = 2 * (amplitude * (1 - u**2) - amplitude / 2)  # [W] in normalised height units
    gy = v[:, None] - shift[None, :]  # [H, W]
    gx = u[None, :].expand(h, w)  # [H, W]
    grid = torch.stack([gx, gy], dim=-1)[None]  # [1, H, W, 2]
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def augment(img: Tensor, fill: tuple[int, ...], rng: np.random.Generator, cfg: RenderConfig) -> Tensor:
    """Geometric and photometric augmentation of a uint8 crop ``[3, H, W]`` with torchvision transforms."""
    from torchvision.transforms import v2

    x = img.float()  # [3, H, W] in 0..255
    if rng.random() < cfg.p_curve:
        x = arc_warp(x, float(rng.uniform(-0.35, 0.35)))
    if rng.random() < cfg.p_rotate:
        x = v2.RandomRotation(cfg.max_rotate, expand=True, fill=list(map(float, fill)))(x)
    if rng.random() < cfg.p_perspective:
        x = v2.RandomPerspective(float(rng.uniform(0.1, 0.35)), p=1.0, fill=list(map(float, fill)))(x)
    if rng.random() < cfg.p_blur:
        x = v2.GaussianBlur(5, sigma=(0.3, 1.6))(x)
    if rng.random() < cfg.p_lowres:
        h, w = x.shape[-2:]
        s = float(rng.uniform(0.3, 0.7))
        x = v2.Resize((h, w), antialias=True)(v2.Resize((max(4, int(h * s)), max(4, int(w * s))), antialias=True)(x))
    x = x.clamp(0, 255) / 255.0
    if rng.random() < cfg.p_jitter:
        x = v2.ColorJitter(brightness=0.3, contrast=0.4, saturation=0.3, hue=0.05)(x)
    if rng.random() < cfg.p_noise:
        x = v2.GaussianNoise(sigma=float(rng.uniform(0.01, 0.08)))(x)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class SyntheticWords:
    """Unlimited synthetic crops: ``self[i] -> (RGB PIL image, label)``, a pure function of ``(seed, i)``."""

    def __init__(self, seed: int = 0, words: list[str] | None = None, config: RenderConfig | None = None,
                 max_len: int = 25) -> None:
        self.seed, self.max_len = seed, max_len
        self.config = config or RenderConfig()
        self.config.validate()
        self.words = default_words() if words is None else words
        font_files()  # fail early without matplotlib

    def __getitem__(self, i: int) -> tuple[Image.Image, str]:
        rng = np.random.default_rng([self.seed, i])
        text = _label(rng, self.words, self.config, self.max_len)
        im, bg = _draw(rng, text, self.config)
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)  # [3, H, W] uint8
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            x = augment(x, bg, rng, self.config)
        return Image.fromarray(x.permute(1, 2, 0).numpy()), text
