"""Reading a crop from disk and turning it into the model's input tensor.

:func:`load_crop` reads through the vision package's one image loader, :func:`maskzoo.vision.images.load_image`
(8/16-bit grey, palette, alpha, CMYK, EXIF rotation, animations, decompression bombs; one-line
:class:`~maskzoo.core.errors.UserError` for a missing path, a folder, a non-image, truncated or empty file).

:func:`to_input` resizes a crop to height 32 keeping its aspect ratio and pads it on the right to 128
(replicating the last column); a crop wider than 4:1 is squeezed to width 128 (scaling it down instead would
leave text a few pixels high). Pixel values are mapped to [-1, 1].
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from maskzoo.core.errors import UserError
from maskzoo.vision.images import MAX_PIXELS as _DEFAULT_MAX_PIXELS
from maskzoo.vision.images import load_image

#: larger images are refused before decoding (a decompression bomb guard)
MAX_PIXELS = _DEFAULT_MAX_PIXELS


def load_crop(path: str | os.PathLike) -> Image.Image:
    """A crop from disk as an upright 8-bit RGB PIL image; user mistakes become one-line UserErrors."""
    return load_image(path, max_pixels=MAX_PIXELS)


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
