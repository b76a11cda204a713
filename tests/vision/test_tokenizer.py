"""Tokenizers own the special tokens; the chat template marks response tokens only."""

from __future__ import annotations

import pytest
from _vision_fixtures import write_tokenizer

from maskzoo.core.errors import UserError
from maskzoo.vision.template import encode_conversation, encode_prompt, get_template, pad_batch
from maskzoo.vision.tokenizer import HFTokenizer, WordTokenizer, expand_image_tokens, load_tokenizer


def test_word_tokenizer_round_trip_and_specials(tmp_path):
    tok = WordTokenizer.for_scenes()
    text = "two small red circles and one large blue square"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len({tok.mask_id, tok.pad_id, tok.eos_id, tok.image_id, tok.bos_id}) == 5
    assert tok.encode("<image> describe the image .")[0] == tok.image_id
    assert tok.decode(tok.encode("describe the image .")) == "describe the image."
    assert tok.encode("zebra") == [tok.unk_id]
    spec = tok.save(tmp_path)
    again = load_tokenizer(tmp_path, spec)
    assert again.vocab == tok.vocab and again.mask_id == tok.mask_id


def test_hf_tokenizer_uses_reserved_token_for_image(tmp_path):
    write_tokenizer(tmp_path / "tokenizer.json")
    tok = HFTokenizer(tmp_path)
    assert tok.image_token == "<|reserved_token_0|>"
    ids = tok.encode("<image> describe the image .")
    assert ids[0] == tok.image_id and tok.image_id not in ids[1:]
    assert tok.decode(ids) == "describe the image ."
    assert tok.mask_id == tok.token_id("<|mdm_mask|>")
    with pytest.raises(UserError, match="tokenizer file not found"):
        HFTokenizer(tmp_path / "nope.json")


def test_template_marks_only_responses():
    tok, tpl = WordTokenizer.for_scenes(), get_template("word")
    turns = [{"from": "human", "value": "<image> describe the image ."}, {"from": "gpt", "value": "a red circle"},
             {"from": "human", "value": "what is in this picture ?"}, {"from": "gpt", "value": "a square"}]
    ids, resp = encode_conversation(tok, tpl, turns, tokens_per_image=4)
    assert ids.count(tok.image_id) == 4
    answer = [tok.vocab[i] for i, r in zip(ids, resp) if r]
    assert answer == ["a", "red", "circle", "<eot>", "a", "square", "<eot>"]
    prompt = encode_prompt(tok, tpl, "<image> describe the image .", 4)
    assert prompt == ids[: len(prompt)] and tok.vocab[prompt[-1]] == "<assistant>"
    batch, maskable = pad_batch([(ids, resp), (ids[:-3], resp[:-3])], tok.eos_id)
    assert batch.shape == maskable.shape == (2, len(ids))
    assert maskable[1, -3:].all() and (batch[1, -3:] == tok.eos_id).all()  # EOS padding is response (LLaDA SFT)
    with pytest.raises(UserError, match="end with an assistant"):
        encode_conversation(tok, tpl, turns[:1], 4)


def test_expand_image_tokens():
    assert expand_image_tokens([1, 9, 2, 9], 9, 3) == [1, 9, 9, 9, 2, 9, 9, 9]


def test_tokenizer_file_named_in_config_must_stay_inside_the_checkpoint(tmp_path):
    import json

    from _vision_fixtures import tiny_vlm

    from maskzoo.core.errors import UserError
    from maskzoo.vision.checkpoint import load_vision_model, save_vision_model

    model, tok = tiny_vlm()
    path = save_vision_model(model, tok, tmp_path / "m")
    (tmp_path / "outside.json").write_text((path / "vocab.json").read_text())
    meta = json.loads((path / "config.json").read_text())
    for name in ("../outside.json", "/etc/passwd"):
        meta["config"]["tokenizer"]["file"] = name
        (path / "config.json").write_text(json.dumps(meta))
        with pytest.raises(UserError, match="outside the checkpoint|absolute path"):
            load_vision_model(path)
