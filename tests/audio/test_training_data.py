"""Training data of the embedded model: composed utterances, exact frame labels, the text LM's layout."""

from __future__ import annotations

import random

import torch
from _audio_fixtures import FSDD

from maskzoo.audio.digits import DIGIT_WORDS, Augment, DigitUtterances, channel_eq, load_bank
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


def test_channel_eq_adds_one_bounded_zero_mean_curve_per_example():
    mel = torch.randn(5, 80, 400)  # [B, M, F]
    g = torch.Generator().manual_seed(0)
    out = channel_eq(mel, g, max_db=12.0)
    curve = out - mel  # [B, M, F]
    assert torch.allclose(curve, curve[:, :, :1].expand_as(curve), atol=1e-6)  # the same in every frame
    assert curve.abs().max() <= 12.0 / 40 + 1e-6  # 40 dB = one unit of Whisper's log10(power) / 4
    assert curve.mean(dim=1).abs().max() < 1e-5  # cosines k >= 1 sum to zero over the mel axis: loudness kept
    assert not torch.allclose(curve[0], curve[1])  # drawn per example
    assert torch.equal(channel_eq(mel, g, max_db=0.0), mel)


def test_text_lm_examples_render_the_digits_in_the_audio_slots():
    tok = build_tokenizer()
    region = text_audio_region(tok, [4, 2, 4], n_semantic=10, n_prefix=3, rng=random.Random(0))
    assert len(region) == 13 and region[:3] == [tok.sil_id] * 3
    assert [tok.vocab[i] for i in region if i != tok.sil_id] == ["four", "two", "four"]
    for seed in range(50):  # runs: in order, each one digit repeated 2..5 times, a <sil> between two runs
        digits = random.Random(seed).choices(range(10), k=4)
        region = text_audio_region(tok, digits, n_semantic=30, n_prefix=2, rng=random.Random(seed), run_slots=(2, 5))
        assert len(region) == 32 and region[:2] == [tok.sil_id] * 2
        runs, prev = [], tok.sil_id
        for i in region:
            if i != tok.sil_id and i == prev:
                runs[-1][1] += 1
            elif i != tok.sil_id:
                runs.append([i, 1])
            prev = i
        assert [tok.vocab[i] for i, _ in runs] == [DIGIT_WORDS[d] for d in digits]
        assert all(2 <= n <= 5 for _, n in runs)
    tight = text_audio_region(tok, [1, 2, 3], n_semantic=8, n_prefix=0, rng=random.Random(0), run_slots=(9, 9))
    assert len(tight) == 8 and tight.count(tok.sil_id) == 2  # runs shortened to fit, one <sil> between runs
    data = TextTasks(tok, n_semantic=50, max_prefix=16, gen_length=8, run_slots=(2, 9))
    batch = LeftPadCollator(tok.pad_id)([data[i] for i in range(8)])
    assert (batch["maskable"].sum(1) == 8).all()  # only the 8 answer positions are modelled
    assert not (batch["maskable"] & (batch["attention_mask"] == 0)).any()
