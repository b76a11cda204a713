"""Loading crops (every user mistake is one UserError line) and resizing to 32x128 keeping the aspect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.vision.str import images
from maskzoo.vision.str.images import load_crop, to_input


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 32768, 65535]], dtype=np.uint16).repeat(4, 0)
    Image.fromarray(a).save(tmp_path / "deep.png")
    im = load_crop(tmp_path / "deep.png")
    got = np.asarray(im.convert("L"))[0].tolist()
    assert got[0] == 0 and 126 <= got[1] <= 129 and got[2] == 255


def test_palette_and_alpha_are_flattened_on_white(tmp_path):
    p = Image.new("P", (10, 4))
    p.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    p.save(tmp_path / "pal.png")
    assert load_crop(tmp_path / "pal.png").convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    rgba = Image.new("RGBA", (10, 4), (0, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    assert load_crop(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("L", (40, 10), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_crop(tmp_path / "rot.jpg").size == (10, 40)


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.png", "not found"),
    (lambda d: d, "folder"),
    (lambda d: _file(d / "empty.png", b""), "empty"),
    (lambda d: _file(d / "text.png", b"hello"), "not an image"),
])
def test_user_mistakes_are_one_line(tmp_path, make, message):
    with pytest.raises(UserError, match=message) as e:
        load_crop(make(tmp_path))
    assert "\n" not in str(e.value)


def test_truncated_file(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated|unreadable"):
        load_crop(tmp_path / "cut.png")


def test_huge_image_is_refused(tmp_path, monkeypatch):
    Image.new("L", (200, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    with pytest.raises(UserError, match="exceeds the limit of 10000"):
        load_crop(tmp_path / "big.png")


def test_to_input_keeps_aspect_and_pads_by_replication():
    a = np.zeros((16, 32), dtype=np.uint8)
    a[:, -1] = 255  # last column white
    x = to_input(a)
    assert x.shape == (1, 32, 128)
    assert torch.allclose(x[0, :, :60], torch.full((32, 60), -1.0))  # 16x32 -> 32x64 (bilinear edge), then padding
    assert x[0, :, 63].min() > 0.4
    assert torch.equal(x[0, :, 64:], x[0, :, 63:64].expand(32, 64))  # the last column replicated


@pytest.mark.parametrize("h, w", [(1, 2000), (2000, 1), (1, 1), (500, 90)])
def test_to_input_any_size(h, w):
    x = to_input(np.full((h, w), 128, dtype=np.uint8))
    assert x.shape == (1, 32, 128) and torch.isfinite(x).all()
    assert to_input(Image.new("RGB", (w, h)), in_chans=3).shape == (3, 32, 128)
