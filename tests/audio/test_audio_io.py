"""Reading audio files: formats, channel mixing, resampling, and one clear error per user mistake."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from _audio_fixtures import FSDD

from maskzoo.audio.audio_io import read_audio, split_windows
from maskzoo.core.errors import UserError

SR = 8000
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)  # 1 s at 8 kHz


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_sample_format_reads_the_same_signal(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, TONE, SR, subtype=subtype)
    x = read_audio(path)
    ref = read_audio_16(tmp_path)
    assert x.dtype == torch.float32 and x.shape == (16000,)
    tol = 2e-2 if subtype == "PCM_U8" else 1e-3
    assert (x - ref).abs().max() < tol


def read_audio_16(tmp_path):
    path = tmp_path / "ref.wav"
    sf.write(path, TONE, SR, subtype="FLOAT")
    return read_audio(path)


def test_stereo_is_mixed_to_mono_and_other_containers_read(tmp_path):
    stereo = np.stack([TONE, np.zeros_like(TONE)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, SR)
    sf.write(tmp_path / "t.flac", TONE, SR)
    sf.write(tmp_path / "t.ogg", TONE, SR)
    mono = read_audio(tmp_path / "s.wav")
    assert mono.shape == (16000,) and abs(mono.abs().max() - 0.25) < 0.01
    assert (read_audio(tmp_path / "t.flac") - 2 * mono).abs().max() < 1e-3
    assert read_audio(tmp_path / "t.ogg").shape == (16000,)
    assert read_audio(FSDD / "recordings" / "3_lucas_0.flac").numel() > 0


def _write_header_only(path, rate):
    import struct

    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
                     + b"data" + struct.pack("<I", 0))


@pytest.mark.parametrize("case, message", [
    ("text", "not a readable audio file"),
    ("empty_file", "not a readable audio file"),
    ("zero_samples", "empty"),
    ("rate_zero", "not a readable audio file|sample rate"),
    ("corrupt_header", "not a readable audio file"),
    ("silent", "silent"),
    ("too_long", "longer than"),
    ("nan", "NaN"),
    ("missing", "no such file"),
    ("folder", "not a file"),
])
def test_user_mistakes_give_one_line(tmp_path, case, message):
    path = tmp_path / "x.wav"
    if case == "text":
        path.write_text("hello, I am not audio\n")
    elif case == "empty_file":
        path.write_bytes(b"")
    elif case == "zero_samples":
        _write_header_only(path, 8000)
    elif case == "rate_zero":
        _write_header_only(path, 0)
    elif case == "corrupt_header":
        sf.write(path, TONE, SR)
        data = bytearray(path.read_bytes())
        data[8:16] = b"XXXXXXXX"
        path.write_bytes(bytes(data))
    elif case == "silent":
        sf.write(path, np.zeros(SR, dtype=np.float32), SR)
    elif case == "too_long":
        sf.write(path, np.tile(TONE, 3), SR)
    elif case == "nan":
        sf.write(path, np.full(SR, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    elif case == "folder":
        path.mkdir()
    with pytest.raises(UserError, match=message) as err:
        read_audio(path, max_seconds=2.0)
    assert "\n" not in str(err.value)


def test_long_audio_is_split_into_windows_not_cut():
    x = torch.arange(10.0)
    parts = split_windows(x, 4)
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert torch.equal(torch.cat(parts), x)
