"""Reading a crop from disk and turning it into the model's input tensor.

:func:`load_crop` is the one place an image file is opened (swap it for a shared loader in one line). It
accepts any PIL-readable file -- 8/16-bit grayscale, palette, with alpha, CMYK, EXIF-rotated -- and raises
:class:`~maskzoo.core.errors.UserError` with one line for a missing path, a folder, a non-image or truncated
file, an empty (0-pixel) image and an image above :data:`MAX_PIXELS`.

:func:`to_input` resizes a crop to height 32 keeping its aspect ratio and pads it on the right to 128
(replicating the last column); a crop wider than 4:1 is squeezed to width 128 (scaling it down instead would
leave text a few pixels high). Pixel values are mapped to [-1, 1].
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from maskzoo.core.errors import UserError

#: larger images are refused (a decompression bomb guard): 100 megapixels
MAX_PIXELS = 100_000_000


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer / float grayscale scaled to 0..255 by its value range (PIL's convert clips)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
        if im.mode.startswith("I;16") or (im.mode == "I" and 255 < hi <= 65535 and lo >= 0):
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        scaled = (a - lo) / max(hi - lo, 1e-12) * 255.0
        return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")
    return im


def _flatten(im: Image.Image) -> Image.Image:
    """RGB or L with any alpha composited on white."""
    im = _to_8bit(im)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im


def load_crop(path: str | os.PathLike) -> Image.Image:
    """A crop from disk as an RGB or L PIL image, fully decoded; user mistakes become one-line UserErrors."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"image not found: {path}")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    if w * h > MAX_PIXELS:
                        raise UserError(f"{path}: image too large ({w}x{h} pixels; the limit is {MAX_PIXELS})")
                    im.load()
                    im = ImageOps.exif_transpose(im)
                    out = _flatten(im)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except UserError:
        raise
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{path}: image too large (more than {MAX_PIXELS} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else "decode error"
        raise UserError(f"{path}: unreadable or truncated image ({msg})") from None
    if out.width == 0 or out.height == 0:
        raise UserError(f"{path}: empty image (0 pixels)")
    return out


def to_input(image: Image.Image | np.ndarray, in_chans: int = 1, height: int = 32, width: int = 128) -> Tensor:
    """Model input ``[in_chans, height, width]`` in [-1, 1] from a PIL image or a uint8 array ``[h, w(, c)]``."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.width == 0 or image.height == 0:
        raise UserError("empty image (0 pixels)")
    image = image.convert("L" if in_chans == 1 else "RGB")
    new_w = max(1, min(width, round(image.width * height / image.height)))
    image = image.resize((new_w, height), Image.Resampling.BILINEAR)
    a = np.asarray(image, dtype=np.float32)  # [h, w] or [h, w, 3]
    x = torch.from_numpy(a.copy()).reshape(height, new_w, in_chans).permute(2, 0, 1)  # [C, h, w]
    x = x / 127.5 - 1.0
    if new_w < width:
        x = F.pad(x[None], (0, width - new_w, 0, 0), mode="replicate")[0]  # [C, h, width]
    return x
