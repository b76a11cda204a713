"""load_image: every odd-but-valid image is read as what a viewer shows; every bad file is one UserError line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.vision.images import load_frames, load_image, to_rgb


def _save(tmp_path, im: Image.Image, name: str, **kw) -> str:
    path = tmp_path / name
    im.save(path, **kw)
    return str(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=st.integers(1, 40), h=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       fmt=st.sampled_from(["png", "bmp", "tiff", "webp"]))
def test_rgb_images_round_trip_exactly(tmp_path, w, h, seed, fmt):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    kw = {"lossless": True} if fmt == "webp" else {}
    out = load_image(_save(tmp_path, Image.fromarray(pixels), f"x.{fmt}", **kw))
    assert out.mode == "RGB" and out.size == (w, h)
    assert np.array_equal(np.asarray(out), pixels)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(0, 65535), min_size=1, max_size=64))
def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path, values):
    a = np.array(values, dtype=np.uint16)[None]  # [1, n]
    out = np.asarray(load_image(_save(tmp_path, Image.fromarray(a), "g16.png")))  # [1, n, 3]
    want = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    assert np.array_equal(out[..., 0], want) and np.array_equal(out[..., 2], want)


def test_mid_grey_16_bit_is_mid_grey(tmp_path):
    a = np.full((4, 4), 32768, dtype=np.uint16)
    assert np.asarray(load_image(_save(tmp_path, Image.fromarray(a), "mid.png")))[0, 0].tolist() == [128, 128, 128]


def test_cmyk_jpeg_and_tiff(tmp_path):
    im = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    for name in ("c.jpg", "c.tif"):
        out = np.asarray(load_image(_save(tmp_path, im, name)))
        assert out.shape == (6, 8, 3)
        r, g, b = out[3, 4].tolist()
        assert r > 200 and g < 60 and b < 60, (name, r, g, b)


def test_transparency_is_composited_over_white(tmp_path):
    p = Image.new("P", (4, 2))
    p.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    p.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    out = np.asarray(load_image(_save(tmp_path, p, "pal.png", transparency=0)))
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [200, 0, 0]
    rgba = Image.new("RGBA", (2, 1), (0, 0, 255, 0))
    rgba.putpixel((1, 0), (0, 0, 255, 128))
    out = np.asarray(load_image(_save(tmp_path, rgba, "a.png")))
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [127, 127, 255]
    grey_alpha = Image.new("LA", (1, 1), (0, 0))
    assert np.asarray(load_image(_save(tmp_path, grey_alpha, "la.png")))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((2, 3, 3), dtype=np.uint8)  # stored 3 wide, 2 high; red top-left
    a[0, 0] = (255, 0, 0)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    out = load_image(_save(tmp_path, im, "rot.png", exif=exif))
    assert out.size == (2, 3)  # shown upright: 2 wide, 3 high
    assert np.asarray(out)[0, 1].tolist() == [255, 0, 0]  # the top-left pixel ends up top-right


def test_animated_gif_first_frame_and_all_frames(tmp_path):
    frames = [Image.new("RGB", (5, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    assert np.asarray(load_image(path))[0, 0].tolist() == [255, 0, 0]
    got = [np.asarray(f)[0, 0].tolist() for f in load_frames(path)]
    assert got == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    assert [np.asarray(f)[0, 0].tolist() for f in load_frames(path, max_frames=2)] == [[255, 0, 0], [0, 0, 255]]


def test_float_and_32_bit_images(tmp_path):
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert np.asarray(to_rgb(f))[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(UserError, match=r"outside \[0, 1\]"):
        to_rgb(Image.fromarray(np.array([[2.0]], dtype=np.float32), "F"))
    with pytest.raises(UserError, match="outside 0..65535"):
        to_rgb(Image.fromarray(np.array([[-5]], dtype=np.int32), "I"))


def test_decompression_bomb_refused_before_decoding(tmp_path):
    path = _save(tmp_path, Image.new("L", (4000, 3000)), "big.png")  # 12 MP of zeros: a tiny file
    with pytest.raises(UserError, match="exceeds the limit of 1000000"):
        load_image(path, max_pixels=1_000_000)
    assert load_image(path).size == (4000, 3000)


@pytest.mark.parametrize("content, match", [(b"", "empty file"), (b"hello, not an image", "not an image file"),
                                            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image")])
def test_bad_files_are_one_line(tmp_path, content, match):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match) as e:
        load_image(path)
    assert "\n" not in str(e.value)


def test_truncated_missing_and_folder(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UserError, match="truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(UserError, match="folder"):
        load_image(tmp_path)


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(buf, "PNG")
    buf.seek(0)
    assert np.asarray(load_image(buf))[1, 2].tolist() == [1, 2, 3]
