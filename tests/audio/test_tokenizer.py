"""The word tokenizer owns its special ids and names unknown words."""

from __future__ import annotations

import pytest

from maskzoo.audio.tasks import QUESTIONS, answer_ids, build_tokenizer, example
from maskzoo.audio.tokenizer import WordTokenizer
from maskzoo.core.errors import UserError


def test_round_trip_digits_and_specials():
    tok = build_tokenizer()
    ids = tok.encode("Is the digit 7 spoken?")
    assert tok.decode(ids) == "is the digit seven spoken?"
    assert tok.decode([*tok.encode("four two"), tok.eos_id, *tok.encode("nine")]) == "four two"
    assert {tok.pad_id, tok.mask_id, tok.bos_id, tok.eos_id, tok.sep_id, tok.audio_id} <= tok.special_ids
    assert WordTokenizer.from_dict(tok.to_dict()).vocab == tok.vocab


def test_unknown_words_and_long_answers_are_user_errors():
    tok = build_tokenizer()
    with pytest.raises(UserError, match="unknown word"):
        tok.encode("what colour is it?")
    with pytest.raises(UserError, match="gen_length"):
        answer_ids(tok, "one two three four five six seven eight", 8)
    with pytest.raises(UserError, match="reserved"):
        WordTokenizer(["<mask>"])


def test_task_answers():
    import random

    rng = random.Random(0)
    assert example("count", (3, 1, 4), rng) == (QUESTIONS["count"], "three")
    assert example("first", (3, 1, 4), rng)[1] == "three" and example("last", (3, 1, 4), rng)[1] == "four"
    answers = [example("contains", (3, 1), rng) for _ in range(200)]
    yes = [q for q, a in answers if a == "yes"]
    assert 60 < len(yes) < 140
    assert all(("three" in q or "one" in q) for q in yes)
    assert all(not ("three" in q or " one " in q) for q, a in answers if a == "no")
