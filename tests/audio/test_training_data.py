"""Training data of the embedded model: composed utterances, exact frame labels, the text LM's layout."""

from __future__ import annotations

import random

import torch
from _audio_fixtures import FSDD

from maskzoo.audio.digits import Augment, DigitUtterances, load_bank
from maskzoo.audio.encoder_pretrain import FeatureCollator, greedy_ctc
from maskzoo.audio.lm_pretrain import LeftPadCollator, TextTasks, text_audio_region
from maskzoo.audio.tasks import build_tokenizer


def test_utterances_are_reproducible_fit_the_window_and_never_use_the_held_out_speaker():
    bank = load_bank(str(FSDD))
    data = DigitUtterances(bank, ("george", "jackson"), 4, 64000, seed=3)
    a, b = data[7], data[7]
    assert torch.equal(a.waveform, b.waveform) and a.digits == b.digits
    for i in range(20):
        u = data[i]
        assert u.speaker in ("george", "jackson") and 1 <= len(u.digits) <= 4 and u.waveform.numel() <= 64000
        assert len(u.spans) == len(u.digits) and all(s < e <= u.waveform.numel() + 1 for s, e in u.spans)


def test_frame_labels_cover_each_recording_and_decode_to_the_digits():
    bank = load_bank(str(FSDD))
    clean = DigitUtterances(bank, ("lucas",), 4, 64000, seed=1, augment=None)
    batch = FeatureCollator(80, 64000, spec_augment=False)([clean[i] for i in range(6)])
    assert batch["features"].shape == (6, 80, 400) and batch["frame_labels"].shape == (6, 200)
    onehot = torch.nn.functional.one_hot(batch["frame_labels"], 11).float().log()  # labels as log-probs
    decoded = greedy_ctc(onehot)
    assert decoded == [list(clean[i].digits) for i in range(6)]
    # speed augmentation stretches the spans with the audio
    aug = DigitUtterances(bank, ("lucas",), 4, 64000, seed=1, augment=Augment(noise_prob=0.0))
    for i in range(6):
        u = aug[i]
        assert u.spans[-1][1] <= u.waveform.numel() + 1


def test_text_lm_examples_render_the_digits_in_the_audio_slots():
    tok = build_tokenizer()
    region = text_audio_region(tok, [4, 2, 4], n_semantic=10, n_prefix=3, rng=random.Random(0))
    assert len(region) == 13 and region[:3] == [tok.sil_id] * 3
    assert [tok.vocab[i] for i in region if i != tok.sil_id] == ["four", "two", "four"]
    data = TextTasks(tok, n_semantic=50, max_prefix=16, gen_length=8)
    batch = LeftPadCollator(tok.pad_id)([data[i] for i in range(8)])
    assert (batch["maskable"].sum(1) == 8).all()  # only the 8 answer positions are modelled
    assert not (batch["maskable"] & (batch["attention_mask"] == 0)).any()
