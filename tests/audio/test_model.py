"""The audio-language model: the "this is the audio:" splice, frozen parts, the DIFFA loss, save/load."""

from __future__ import annotations

import pytest
import torch
from _audio_fixtures import tiny_model

from maskzoo.audio.model import AudioLanguageModel
from maskzoo.audio.tasks import AUDIO_MARKER, answer_ids, prompt_ids
from maskzoo.audio.train import AudioDiffusionLoss, diffa_loss, slot_labels
from maskzoo.core.checkpoint import load_model, save_model
from maskzoo.core.errors import UserError


def _batch(model: AudioLanguageModel, n: int = 2):
    tok = model.tokenizer
    ids = [prompt_ids(tok, q, model.num_audio_tokens) + answer_ids(tok, a, 8)
           for q, a in [("transcribe the audio.", "one two"), ("how many digits are spoken?", "two")][:n]]
    width = max(map(len, ids))
    x = torch.full((n, width), tok.pad_id)
    att = torch.zeros(n, width, dtype=torch.long)
    maskable = torch.zeros(n, width, dtype=torch.bool)
    for i, row in enumerate(ids):
        x[i, width - len(row):] = torch.tensor(row)
        att[i, width - len(row):] = 1
        maskable[i, width - 8:] = True
    return {"input_ids": x, "attention_mask": att, "maskable": maskable,
            "waveforms": torch.randn(n, model.window_samples) * 0.1}


def test_audio_tokens_follow_the_marker_and_replace_the_placeholders():
    m = tiny_model()
    assert m.num_audio_tokens == 2 + 3 + 50 // 4  # soft prompts + acoustic queries + semantic (4x down)
    tok = m.tokenizer
    ids = torch.tensor([prompt_ids(tok, "transcribe the audio.", m.num_audio_tokens)])
    assert tok.decode(ids[0, 1:1 + len(tok.encode(AUDIO_MARKER))].tolist()) == AUDIO_MARKER
    audio = m.encode_audio(torch.randn(1, m.window_samples) * 0.1)  # [1, A, D]
    emb = m.embed(ids, audio)
    is_audio = ids[0] == tok.audio_id
    assert torch.equal(emb[0, is_audio], audio[0])
    assert torch.equal(emb[0, ~is_audio], m.lm.embed_tokens(ids)[0, ~is_audio])
    with pytest.raises(UserError, match="placeholders"):
        m.embed(ids[:, :-3], audio[:, :-1])


def test_only_adapters_train_and_frozen_parts_stay_in_eval_mode():
    m = tiny_model()
    m.set_trainable(["soft_prompts", "semantic"])
    trainable = {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"soft_prompts", "semantic"}
    m.train()
    assert not m.encoder.training and not m.lm.training and m.semantic.training
    with pytest.raises(UserError, match="unknown trainable"):
        m.set_trainable(["decoder"])


def test_diffa_loss_is_ce_over_t_summed_over_masked_response_divided_by_response_tokens():
    m = tiny_model()
    batch = _batch(m)
    gen = torch.Generator().manual_seed(3)
    loss_fn = AudioDiffusionLoss(m.mask_id)
    loss_fn.inner.generator = gen
    loss, _ = loss_fn(m, batch)
    # recompute by hand with the same random draws
    gen.manual_seed(3)
    t = torch.rand(2, generator=gen) * (1 - 1e-3) + 1e-3  # uniform times, LLaDA's floor
    masked = (torch.rand(batch["input_ids"].shape, generator=gen) < t[:, None]) & batch["maskable"]
    xt = batch["input_ids"].masked_fill(masked, m.mask_id)
    with torch.no_grad():
        logits = m(xt, waveforms=batch["waveforms"], attention_mask=batch["attention_mask"])
    ce = torch.nn.functional.cross_entropy(logits[masked], batch["input_ids"][masked], reduction="none")
    expected = (ce / t[:, None].expand_as(masked)[masked]).sum() / batch["maskable"].sum()
    assert masked.any() and not masked[~batch["maskable"]].any()
    assert torch.allclose(loss, expected, rtol=1e-4)
    d = diffa_loss(m.mask_id)
    assert d.normalization.__name__ == "per_maskable_token" and d.time_sampler.__name__ == "uniform_times"


def test_slot_labels_mark_the_slots_whose_centre_a_recording_covers():
    # slots of 100 samples (centres 50, 150, ...); digit 3 spans [120, 360), digit 7 spans [360, 480)
    out = slot_labels([(120, 360), (360, 480)], [3, 7], word_ids=list(range(10, 20)), sil_id=0, n_slots=6,
                      slot_samples=100)
    assert out == [0, 13, 13, 13, 17, 0]
    assert slot_labels([], [], list(range(10)), 0, 3, 100) == [0, 0, 0]


def test_slot_loss_is_zero_when_the_semantic_tokens_are_the_lm_embeddings_of_the_labels():
    m = tiny_model()
    batch = _batch(m)
    k = m.semantic.num_tokens(m.encoder.num_positions)
    offset = m.num_audio_tokens - k
    assert m.semantic_slice() == slice(offset, offset + k)  # after 2 soft prompts and 3 acoustic queries
    labels = torch.randint(0, len(m.tokenizer), (2, k))
    batch["slot_labels"] = labels
    base, _ = AudioDiffusionLoss(m.mask_id)(m, batch)
    target = m.lm.embed_tokens(labels).detach()  # [2, K, D]

    def encode_as_labels(waveforms):
        audio = m.__class__.encode_audio(m, waveforms).clone()
        audio[:, offset:] = target
        return audio

    m.encode_audio = encode_as_labels
    loss_fn = AudioDiffusionLoss(m.mask_id, slot_weight=2.0)
    torch.manual_seed(0)
    exact, metrics = loss_fn(m, batch)
    assert metrics["slot_mse"] == pytest.approx(0.0, abs=1e-10)
    m.encode_audio = lambda w: m.__class__.encode_audio(m, w).index_fill(1, torch.tensor([offset]), 0.0)
    _, off = loss_fn(m, batch)
    assert off["slot_mse"] > 0
    assert base.isfinite() and exact.isfinite()


def test_a_training_step_moves_adapters_only(tmp_path):
    m = tiny_model()
    m.set_trainable(["acoustic", "semantic"])
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = AudioDiffusionLoss(m.mask_id)(m.train(), _batch(m))
    loss.backward()
    opt.step()
    changed = {k.split(".")[0] for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"acoustic", "semantic"}
    save_model(m, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again, AudioLanguageModel)
    for k, v in m.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_wav2vec2_family_builds_from_torchaudio():
    m = tiny_model(encoder=dict(family="hubert", d_model=16, n_layers=2, n_heads=2, ffn_dim=32,
                                window_seconds=1.0))
    a = m.encode_audio(torch.randn(2, 16000) * 0.1)
    assert m.encoder.num_positions == 49 and a.shape == (2, m.num_audio_tokens, 32)
    with pytest.raises(UserError, match="unknown encoder family"):
        tiny_model(encoder=dict(family="conformer"))


def test_build_model_loads_the_frozen_lm_under_lora_exactly(tmp_path):
    from maskzoo.audio.encoder_pretrain import save_encoder
    from maskzoo.audio.train import AdapterRecipe, LoraSpec, build_model
    from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

    m = tiny_model()
    save_encoder(m.encoder, tmp_path / "enc")
    lm = DiffusionTransformer(TransformerConfig.from_dict(dict(m.config.lm)))
    save_model(lm, tmp_path / "lm", extra={"tokenizer": m.tokenizer.to_dict()})
    recipe = AdapterRecipe(encoder_dir=str(tmp_path / "enc"), lm_dir=str(tmp_path / "lm"), lora=LoraSpec(rank=4),
                           trainable=["semantic", "lora"])
    built = build_model(recipe)
    ids = torch.randint(7, len(m.tokenizer), (2, 9))
    with torch.no_grad():
        assert torch.allclose(built.lm(ids), lm(ids), atol=1e-5)  # LoRA starts at zero: the same LM
    trainable = {n.split(".")[0] for n, p in built.named_parameters() if p.requires_grad}
    assert trainable == {"semantic", "lm"}
    assert all("lora_" in n for n, p in built.lm.named_parameters() if p.requires_grad)
