"""The synthetic renderer, the shipped IIIT5K crops and their split, and the resumable training stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import Alphabet
from maskzoo.vision.str.data import CropStream, DataConfig
from maskzoo.vision.str.realdata import VAL_SIZE, load_iiit5k, split_iiit5k
from maskzoo.vision.str.render import RenderConfig, SyntheticWords, arc_warp, font_files, words_from_text


def test_fonts_come_from_matplotlib():
    fonts = font_files()
    assert len(fonts) >= 12 and all("matplotlib" in str(f) for f in fonts)


def test_synthetic_crops_are_reproducible_and_varied():
    s = SyntheticWords(seed=3, words=["alpha", "Beta,", "gamma"])
    a, b = s[7], SyntheticWords(seed=3, words=["alpha", "Beta,", "gamma"])[7]
    assert a[1] == b[1] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    samples = [s[i] for i in range(30)]
    labels = {t for _, t in samples}
    assert len(labels) > 5 and all(0 < len(t) <= 25 for t in labels)
    assert all(im.mode == "RGB" and im.width > 4 and im.height > 4 for im, _ in samples)
    heights = {im.height for im, _ in samples}
    assert len(heights) > 5  # random font sizes / geometry
    assert all(np.asarray(im).std() > 1 for im, _ in samples)  # text was drawn (not a blank canvas)


def test_words_from_text_and_config_validation():
    assert words_from_text("To be, or not to be: é", max_len=3) == ["To", "be,", "be:", "not", "or", "to"]
    with pytest.raises(UserError):
        RenderConfig(p_blur=1.5).validate()


def test_arc_warp_bends_a_horizontal_line():
    x = torch.zeros(1, 21, 41)
    x[0, 10] = 1.0  # a horizontal line through the middle
    y = arc_warp(x, 0.3)
    rows = y[0].argmax(0)  # row of the line in each column
    assert rows[20] != rows[0]  # middle moved relative to the ends
    assert abs(int(rows[0]) - int(rows[40])) <= 1  # symmetric


def test_iiit5k_crops_and_a_fixed_disjoint_split():
    crops = load_iiit5k()
    assert len(crops) == 2000 and all(im.shape[0] == 32 and im.dtype == np.uint8 for im in crops.images)
    train, val = split_iiit5k()
    assert len(val) == VAL_SIZE and len(train) == 2000 - VAL_SIZE
    assert not set(train.names) & set(val.names)
    assert split_iiit5k()[1].names == val.names


def test_stream_mixes_real_and_synthetic_and_resumes_exactly():
    train, _ = split_iiit5k()
    a = Alphabet()
    cfg = DataConfig(batch_size=6, p_real=0.5)
    s = CropStream(train, a, cfg, seed=1)
    b0 = next(s)
    assert b0["images"].shape == (6, 1, 32, 128) and b0["targets"].shape == (6, 26)
    state = s.state_dict()
    b1 = next(s)
    s2 = CropStream(train, a, cfg, seed=1)
    s2.load_state_dict(state)
    assert torch.equal(next(s2)["targets"], b1["targets"])
    texts = [a.decode(t) for k in range(4) for t in s.batch(k)["targets"]]
    real = set(train.labels)
    n_real = sum(t in real for t in texts)
    assert 3 <= n_real <= 21  # both sources appear (p_real = 0.5 of 24)
