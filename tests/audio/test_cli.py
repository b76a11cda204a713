"""``maskzoo audio transcribe | ask`` end to end, and bad input: one line on stderr, exit 2, no partial output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from _audio_fixtures import FSDD, tiny_model

from maskzoo.core.checkpoint import save_model
from maskzoo.core.cli import main


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    paths = []
    for name in ("3_lucas_0", "7_lucas_1"):
        x, sr = sf.read(FSDD / "recordings" / f"{name}.flac", dtype="int16")
        sf.write(d / f"{name}.wav", x, sr, subtype="PCM_16")
        paths.append(d / f"{name}.wav")
    return paths


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "tiny"
    save_model(tiny_model(), path)
    return str(path)


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_transcribe_prints_one_line_per_file_and_jsonl(capsys, wavs, tiny_ckpt, tmp_path):
    rc, out, err = _run(capsys, ["audio", "transcribe", *map(str, wavs), "--checkpoint", tiny_ckpt, "-q"])
    assert rc == 0, err
    lines = out.splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(p) for p in wavs]
    assert all(ln.count("\t") == 1 for ln in lines)
    target = tmp_path / "out.jsonl"
    rc, out, err = _run(capsys, ["audio", "ask", *map(str, wavs), "--question", "how many digits are spoken?",
                                 "--checkpoint", tiny_ckpt, "--jsonl", "--out", str(target), "--batch-size", "1",
                                 "--steps", "4", "-q"])
    assert rc == 0, err
    rows = [json.loads(x) for x in target.read_text().splitlines()]
    assert [r["audio"] for r in rows] == [str(p) for p in wavs] and all("answer" in r for r in rows)


@pytest.mark.parametrize("bad", ["text", "silent", "missing"])
def test_one_bad_file_stops_everything_with_one_line(capsys, wavs, tiny_ckpt, tmp_path, bad):
    path = tmp_path / "bad.wav"
    if bad == "text":
        path.write_text("not audio")
    elif bad == "silent":
        sf.write(path, np.zeros(4000, dtype=np.int16), 8000)
    target = tmp_path / "out.txt"
    rc, out, err = _run(capsys, ["audio", "transcribe", str(wavs[0]), str(path), "--checkpoint", tiny_ckpt,
                                 "--out", str(target)])
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bad.wav" in err and "Traceback" not in err
    assert not target.exists()


def test_ask_checks_the_question_and_the_length(capsys, wavs, tiny_ckpt, tmp_path):
    rc, out, err = _run(capsys, ["audio", "ask", str(wavs[0]), "--question", "what colour is it?",
                                 "--checkpoint", tiny_ckpt])
    assert rc == 2 and "colour" in err and out == ""
    long = tmp_path / "long.wav"
    x, sr = sf.read(wavs[0], dtype="int16")
    sf.write(long, np.tile(x, 8), sr)  # longer than the tiny model's 1 s window
    rc, out, err = _run(capsys, ["audio", "ask", str(long), "--question", "how many digits are spoken?",
                                 "--checkpoint", tiny_ckpt])
    assert rc == 2 and "window" in err
    rc, out, err = _run(capsys, ["audio", "transcribe", str(long), "--checkpoint", tiny_ckpt, "-q"])
    assert rc == 0 and out.startswith(str(long) + "\t")  # transcribe goes window by window
    with pytest.raises(SystemExit) as exc:
        main(["audio", "transcribe", str(wavs[0]), "--checkpoint", tiny_ckpt, "--steps", "0"])
    assert exc.value.code == 2
    rc, out, err = _run(capsys, ["audio", "transcribe", str(wavs[0]), "--checkpoint", tiny_ckpt, "--steps", "3",
                                 "--block-length", "4"])
    assert rc == 2 and "steps" in err and out == ""  # 3 steps cannot split over 2 blocks


EMBEDDED = FSDD.parents[2] / "packages" / "audio" / "src" / "maskzoo" / "audio" / "weights" / "fsdd-digits"
DEMO = FSDD.parent / "audio_demo"


@pytest.mark.skipif(not (EMBEDDED / "config.json").is_file(), reason="embedded weights not built")
def test_embedded_default_transcribes_and_answers_the_demo_files(capsys):
    refs = [json.loads(x) for x in (DEMO / "reference_transcripts.jsonl").read_text().splitlines()]
    paths = [str(FSDD.parents[2] / r["audio"]) for r in refs]
    rc, out, err = _run(capsys, ["audio", "transcribe", *paths, "-q"])
    assert rc == 0, err
    hyps = [ln.split("\t")[1] for ln in out.splitlines()]
    assert len(hyps) == len(refs)
    digits = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert all(set(h.split()) <= digits for h in hyps)
    rc, out, err = _run(capsys, ["audio", "ask", *paths, "--question", "is the digit two spoken?", "-q"])
    assert rc == 0, err
    assert all(ln.split("\t")[1] in ("yes", "no") for ln in out.splitlines())
