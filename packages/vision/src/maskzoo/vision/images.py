"""Reading images for the models: one function, :func:`load_image`, for every verb and every package user.

Any file Pillow decodes becomes an 8-bit RGB image that shows what a viewer shows; everything else is one
:class:`~maskzoo.core.errors.UserError` line naming the file and the problem:

* **size limit** -- width x height above ``max_pixels`` (default: Pillow's 89.5 MP bomb threshold) is refused from
  the header, before any pixel is decoded (a "decompression bomb": a small file that decodes to gigabytes);
* **orientation** -- the EXIF orientation tag is applied (a phone photo taken upright is read upright);
* **16-bit and float** -- 16-bit grey (``I;16``, ``I``) is scaled to 8 bits (``v / 257``), not clipped to white;
  float images (``F``) in [0, 1] are scaled by 255, others are refused;
* **transparency** -- RGBA, LA, and palette or grey images with a transparent colour are composited over white
  (as LLaDA-V's / Hugging Face's ``convert_to_rgb`` does); CMYK and YCbCr are converted by Pillow;
* **animations** -- an animated GIF / WebP / APNG is read as its *first frame* (:func:`load_frames` returns all);
* **not an image** -- a missing path, a folder, an empty file, a non-image or truncated file: refused.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskzoo.core.errors import UserError

#: default pixel limit (Pillow's own warning threshold, about 89.5 megapixels)
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")

PathOrFile = str | os.PathLike | IO[bytes]


def _name(src: PathOrFile) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else getattr(src, "name", "<image data>")


def _open(src: PathOrFile) -> Image.Image:
    """Pillow's lazy open with every way it can fail turned into one line (nothing decoded yet)."""
    name = _name(src)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.is_dir():
            raise UserError(f"{name}: is a folder, not an image file")
        if not path.is_file():
            raise UserError(f"image not found: {name}")
        if path.stat().st_size == 0:
            raise UserError(f"{name}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(src)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{name}: image too large to decode safely (over {MAX_PIXELS} pixels; a decompression "
                        "bomb?)") from None
    except UnidentifiedImageError:
        raise UserError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{name}: unreadable image ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:120] if str(e) else type(e).__name__


def _check_size(im: Image.Image, name: str, max_pixels: int) -> None:
    w, h = im.size
    if w < 1 or h < 1:
        raise UserError(f"{name}: image has no pixels ({w} x {h})")
    if w * h > max_pixels:
        raise UserError(f"{name}: {w} x {h} = {w * h} pixels exceeds the limit of {max_pixels} (a decompression "
                        "bomb?); pass a larger max_pixels to read it")


def _decode(im: Image.Image, name: str) -> Image.Image:
    """Decode the current frame now (truncated data fails here, not in the middle of a batch)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise UserError(f"{name}: unreadable or truncated image ({_first_line(e)})") from None
    return im


def to_rgb(im: Image.Image, name: str = "image") -> Image.Image:
    """Any Pillow image -> 8-bit RGB: 16-bit grey scaled by 1/257, float in [0, 1] by 255, transparency over
    white, everything else through Pillow's conversion."""
    mode = im.mode
    if mode in _SIXTEEN_BIT or mode == "I":
        a = np.asarray(im, dtype=np.int64)  # [H, W]
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise UserError(f"{name}: 32-bit integer pixels outside 0..65535 cannot be shown as an image")
        return Image.fromarray(((a + 128) // 257).astype(np.uint8), "L").convert("RGB")  # round(v / 257)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)  # [H, W]
        if a.size and (not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0):
            raise UserError(f"{name}: floating-point pixels outside [0, 1] cannot be shown as an image")
        return Image.fromarray(np.round(a * 255.0).astype(np.uint8), "L").convert("RGB")
    if mode == "RGB":
        return im
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return im.convert("RGB")
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def load_image(src: PathOrFile, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An image file (path or binary file object) as an upright 8-bit RGB PIL image (first frame of an
    animation); any problem is one :class:`UserError` line naming the file (see the module docstring)."""
    name = _name(src)
    im = _open(src)
    with im:
        _check_size(im, name, max_pixels)
        _decode(im, name)  # frame 0
        out = _upright(im, name)
        return to_rgb(out, name).copy()


def load_frames(src: PathOrFile, *, max_frames: int | None = None, max_pixels: int = MAX_PIXELS,
                ) -> list[Image.Image]:
    """Every frame of an animated image (GIF, WebP, APNG) as RGB images; ``max_frames`` picks that many evenly
    spaced frames (as LLaDA-V samples video frames). A still image gives one frame."""
    name = _name(src)
    im = _open(src)
    with im:
        _check_size(im, name, max_pixels)
        n = int(getattr(im, "n_frames", 1))
        if n * im.size[0] * im.size[1] > 16 * max_pixels:
            raise UserError(f"{name}: {n} frames of {im.size[0]} x {im.size[1]} pixels are too many to decode")
        picks = list(range(n))
        if max_frames is not None:
            if max_frames < 1:
                raise UserError(f"max_frames must be >= 1, got {max_frames}")
            picks = sorted({round(k * (n - 1) / max(max_frames - 1, 1)) for k in range(min(max_frames, n))})
        frames = []
        for k in picks:
            try:
                im.seek(k)
            except (EOFError, OSError) as e:
                raise UserError(f"{name}: cannot read frame {k} ({_first_line(e)})") from None
            _decode(im, name)
            frames.append(to_rgb(_upright(im, name), name).copy())
        return frames


def _upright(im: Image.Image, name: str) -> Image.Image:
    """Apply the EXIF orientation tag (a broken EXIF block is ignored: the pixels are still right side up as
    stored)."""
    try:
        return ImageOps.exif_transpose(im) or im
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, ZeroDivisionError):
        return im
