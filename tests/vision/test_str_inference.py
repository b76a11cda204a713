"""Every inference mode: a scripted denoiser checks the algorithms (calls, reveal order, refinement); a tiny
real model checks ``read_text`` end to end (every mode, batch invariance, confidences)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import Alphabet
from maskzoo.vision.str.inference import (
    MODES,
    after_eos,
    decode_autoregressive,
    decode_causal,
    decode_cloze,
    decode_low_confidence,
    decode_parallel,
    decode_semi_autoregressive,
    read_text,
)
from maskzoo.vision.str.model import STRConfig, STRModel

WORDS = ["cat", "house"]


class Scripted:
    """A denoiser that knows each row's word (row index carried in ``memory``). Position i predicts the true
    id with confidence 0.95 - 0.01 i, except positions in ``hard``: those are right (confidence 0.9) only when
    their left neighbour is revealed in the input, otherwise wrong ('?', confidence 0.3). After the word it
    predicts EOS (0.99). With ``causal`` it reads only the prefix (the autoregressive baseline's contract)."""

    def __init__(self, hard: set[int] = frozenset(), causal: bool = False) -> None:
        self.alphabet = Alphabet()
        self.hard, self.causal = hard, causal
        self.targets = self.alphabet.encode_batch(WORDS)  # [2, L]
        self.calls: list[torch.Tensor] = []

    def decode(self, memory: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = self.alphabet
        self.calls.append(x.clone())
        rows = memory[:, 0, 0].long()  # [b]
        b, n = x.shape
        logits = torch.full((b, n, a.num_classes), -1e4)
        wrong = a.encode("?")[0]
        for r in range(b):
            t = self.targets[rows[r]]
            for i in range(n):
                pos = i if not self.causal else i  # causal input i predicts target i (input is BOS + prefix)
                true = int(t[pos]) if t[pos] != a.pad_id else a.eos_id
                if pos in self.hard and not self.causal:
                    known = pos > 0 and x[r, pos - 1] != a.mask_id
                    tok, p = (true, 0.9) if known else (int(wrong), 0.3)
                else:
                    tok, p = true, (0.99 if t[pos] in (a.eos_id, a.pad_id) else 0.95 - 0.01 * pos)
                logits[r, i, :] = math.log((1 - p) / (a.num_classes - 1))
                logits[r, i, tok] = math.log(p)
        return logits


def _memory(b: int = 2) -> torch.Tensor:
    return torch.arange(b, dtype=torch.float32)[:, None, None]  # [B, 1, 1] row index


def _texts(model, ids) -> list[str]:
    return [model.alphabet.decode(r) for r in ids]


def test_after_eos():
    ids = torch.tensor([[3, 0, 4, 0], [3, 4, 5, 6]])
    assert after_eos(ids, 0).tolist() == [[False, False, True, True], [False] * 4]


def test_parallel_is_one_call_and_misses_context_dependent_characters():
    m = Scripted(hard={2})
    ids, conf = decode_parallel(m, _memory())
    assert len(m.calls) == 1 and (m.calls[0] == m.alphabet.mask_id).all()
    assert _texts(m, ids) == ["ca?", "ho?se"]
    assert conf[0, 2].item() == pytest.approx(0.3, abs=1e-4) and conf[0, 0].item() == pytest.approx(0.95, abs=1e-4)


def test_low_confidence_reveals_confident_positions_first_and_fixes_the_rest():
    m = Scripted(hard={2})
    ids, conf = decode_low_confidence(m, _memory(), steps=3)
    assert _texts(m, ids) == WORDS
    assert len(m.calls) == 2  # everything but position 2 in step 1, position 2 in step 2: early exit
    second = m.calls[1]
    assert (second[:, 2] == m.alphabet.mask_id).all() and (second[:, :2] != m.alphabet.mask_id).all()
    assert conf[0, 2].item() == pytest.approx(0.9, abs=1e-4)


def test_low_confidence_with_one_step_equals_parallel():
    m1, m2 = Scripted(hard={2}), Scripted(hard={2})
    a, _ = decode_low_confidence(m1, _memory(), steps=1)
    b, _ = decode_parallel(m2, _memory())
    assert torch.equal(a, b) and len(m1.calls) == 1


def test_autoregressive_reveals_one_position_per_call_until_eos():
    m = Scripted(hard={2, 3})
    ids, _ = decode_autoregressive(m, _memory())
    assert _texts(m, ids) == WORDS
    assert len(m.calls) == len("house") + 1  # stops once every row has revealed its EOS
    for i, x in enumerate(m.calls):
        revealed = (x != m.alphabet.mask_id).sum(-1)
        assert (revealed == i).all()


def test_semi_autoregressive_decodes_blocks_left_to_right():
    m = Scripted(hard={4})  # its left neighbour (3) is in the first block of 4
    ids, _ = decode_semi_autoregressive(m, _memory(), block_length=4)
    assert _texts(m, ids) == WORDS
    assert len(m.calls) == 2  # ceil(6 / 4) for "house" + EOS
    assert ((m.calls[1] != m.alphabet.mask_id).sum(-1) == 4).all()
    m2 = Scripted(hard={2})  # inside the first block: decoded without its neighbour, like parallel
    ids2, _ = decode_semi_autoregressive(m2, _memory(), block_length=4)
    assert _texts(m2, ids2) == ["ca?", "ho?se"]


def test_cloze_refinement_repredicts_each_position_from_the_others():
    m = Scripted(hard={2})
    ids, conf = decode_cloze(m, _memory(), steps=1)
    assert _texts(m, ids) == WORDS
    assert len(m.calls) == 2  # parallel + one batched call holding every copy
    copies = m.calls[1]
    span = copies.shape[0] // 2
    assert span == len("house") + 1
    per_copy_masks = (copies == m.alphabet.mask_id).sum(-1)
    assert (per_copy_masks[:span] >= 1).all()
    assert conf[1, 2].item() == pytest.approx(0.9, abs=1e-4)
    # after the predicted EOS every copy holds MASK, as every training input does (noisy_input); the parallel
    # pass predicts EOS there, and feeding those back made cloze read 5 % where parallel read 43 %
    a = m.alphabet
    for row, word in enumerate(WORDS):
        rows = copies[row * span:(row + 1) * span]
        assert (rows[:, len(word) + 1:] == a.mask_id).all()
        assert (rows[:, len(word)] != a.mask_id).sum() == span - 1  # the EOS itself is kept, except in its copy


def test_causal_baseline_decodes_greedily_until_eos():
    m = Scripted(causal=True)
    ids, _ = decode_causal(m, _memory())
    assert _texts(m, ids) == WORDS
    assert len(m.calls) == len("house") + 1
    assert [c.shape[1] for c in m.calls] == list(range(1, len("house") + 2))  # prefix grows by one
    assert (m.calls[0][:, 0] == m.alphabet.bos_id).all()


# --------------------------------------------------------------------------------------- a real tiny model
@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny")).eval()


def _crops() -> list[Image.Image]:
    g = torch.Generator().manual_seed(0)
    sizes = [(40, 100), (32, 128), (20, 300)]
    return [Image.fromarray((torch.rand(h, w, generator=g) * 255).byte().numpy()) for h, w in sizes]


@pytest.mark.parametrize("mode", list(MODES))
def test_read_text_every_mode_is_batch_invariant(tiny, mode):
    crops = _crops()
    together = read_text(tiny, crops, mode=mode, batch_size=8)
    alone = [read_text(tiny, [c], mode=mode)[0] for c in crops]
    assert [r.text for r in together] == [r.text for r in alone]
    for r in together:
        assert len(r.char_confidences) == len(r.text) and len(r.text) <= 25
        assert all(0 < c <= 1 for c in r.char_confidences)


def test_read_text_rejects_bad_options(tiny):
    with pytest.raises(UserError):
        read_text(tiny, _crops(), mode="beam")
    with pytest.raises(UserError):
        read_text(tiny, _crops(), mode="low_confidence", steps=0)
    with pytest.warns(UserWarning, match="steps does not apply to mode 'parallel'.*ignored"):
        ignored = read_text(tiny, _crops(), mode="parallel", steps=3)
    assert [r.text for r in ignored] == [r.text for r in read_text(tiny, _crops(), mode="parallel")]
    with pytest.warns(UserWarning, match="block_length does not apply"):
        read_text(tiny, _crops(), mode="low_confidence", block_length=2)
    with pytest.raises(UserError, match="integer"):
        read_text(tiny, _crops(), mode="parallel", steps=2.5)
    ar = STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny", causal=True)).eval()
    with pytest.raises(UserError, match="autoregressive"):
        read_text(ar, _crops(), mode="parallel")
    assert len(read_text(ar, _crops(), mode="autoregressive")) == 3
    with pytest.warns(UserWarning, match="steps does not apply"):
        read_text(ar, _crops(), mode="autoregressive", steps=2)


_option = st.one_of(st.none(), st.integers(-3, 30), st.booleans(), st.floats(-2, 5), st.text(max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.one_of(st.sampled_from(list(MODES)), st.text(max_size=8)), steps=_option, block_length=_option,
       batch_size=_option)
def test_read_text_options_either_read_every_crop_or_say_one_user_error(tiny, mode, steps, block_length, batch_size):
    """Any combination of options: valid values read every crop (text within the length limit, confidences in
    (0, 1]), with a UserWarning for an option the mode does not read; any other raises UserError, never a
    TypeError or an IndexError from deep inside a decoder."""
    crops = _crops()[:2]
    kwargs = {"mode": mode, "steps": steps, "block_length": block_length}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    option = MODES[mode][1] if mode in MODES else None
    given = {k: v for k, v in (("steps", steps), ("block_length", block_length)) if v is not None}
    valid = (mode in MODES and all(type(v) is int and v >= 1 for v in given.values())
             and (batch_size is None or (type(batch_size) is int and batch_size >= 1)))
    if not valid:
        with pytest.raises(UserError), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a valid but unread option may warn before a bad batch size fails
            read_text(tiny, crops, **kwargs)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        readings = read_text(tiny, crops, **kwargs)
    assert sorted(str(w.message).split()[0] for w in caught) == sorted(k for k in given if k != option)
    assert len(readings) == 2
    for r in readings:
        assert len(r.text) <= 25 and len(r.char_confidences) == len(r.text)
        assert all(0 < c <= 1 for c in r.char_confidences)
