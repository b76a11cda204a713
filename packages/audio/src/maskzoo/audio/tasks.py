"""The instruction tasks of the embedded models and the prompt layout they share with the LM (DIFFA-style).

Prompt (ids):  <bos> this is the audio : <audio> x A <sep> QUESTION <sep>     then the answer, <eos>-padded
                                         \\__ A audio embeddings are spliced here (``inputs_embeds``)

Tasks (question -> answer), answers in words:

| task       | question                         | answer                        |
| ---------- | -------------------------------- | ----------------------------- |
| transcribe | transcribe the audio.            | the digits, e.g. "four two"   |
| count      | how many digits are spoken?      | a number word, e.g. "two"     |
| first      | what is the first digit?         | a digit word                  |
| last       | what is the last digit?          | a digit word                  |
| contains   | is the digit X spoken?           | yes / no  (balanced)          |
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from maskzoo.audio.digits import DIGIT_WORDS
from maskzoo.audio.tokenizer import WordTokenizer
from maskzoo.core.errors import UserError

AUDIO_MARKER = "this is the audio:"
TRANSCRIBE = "transcribe the audio."
QUESTIONS = {
    "transcribe": TRANSCRIBE,
    "count": "how many digits are spoken?",
    "first": "what is the first digit?",
    "last": "what is the last digit?",
    "contains": "is the digit {x} spoken?",
}
TASKS = tuple(QUESTIONS)


def build_tokenizer() -> WordTokenizer:
    """The digit models' vocabulary: every word of the marker, the questions and the answers."""
    words: list[str] = []
    tok = WordTokenizer([])
    for text in (AUDIO_MARKER, *QUESTIONS.values(), " ".join(DIGIT_WORDS), "yes no"):
        for w in tok.words(text.replace("{x}", "")):
            if w not in words:
                words.append(w)
    return WordTokenizer(words)


def example(task: str, digits: Sequence[int], rng: random.Random) -> tuple[str, str]:
    """``(question, answer)`` of ``task`` for an utterance of ``digits``."""
    if task == "transcribe":
        return TRANSCRIBE, " ".join(DIGIT_WORDS[d] for d in digits)
    if task == "count":
        return QUESTIONS[task], DIGIT_WORDS[len(digits)]
    if task == "first":
        return QUESTIONS[task], DIGIT_WORDS[digits[0]]
    if task == "last":
        return QUESTIONS[task], DIGIT_WORDS[digits[-1]]
    if task == "contains":
        spoken = rng.random() < 0.5
        pool = sorted(set(digits)) if spoken else [d for d in range(10) if d not in digits]
        x = rng.choice(pool)
        return QUESTIONS[task].format(x=DIGIT_WORDS[x]), "yes" if spoken else "no"
    raise UserError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def prompt_ids(tok: WordTokenizer, question: str, n_audio: int) -> list[int]:
    """``<bos> marker <audio> x n_audio <sep> question <sep>``."""
    return [tok.bos_id, *tok.encode(AUDIO_MARKER), *[tok.audio_id] * n_audio, tok.sep_id,
            *tok.encode(question), tok.sep_id]


def answer_ids(tok: WordTokenizer, answer: str, gen_length: int) -> list[int]:
    """Answer words, then ``<eos>`` up to ``gen_length`` (LLaDA's SFT padding, part of the response)."""
    ids = tok.encode(answer)
    if len(ids) >= gen_length:
        raise UserError(f"answer {answer!r} needs {len(ids) + 1} tokens; gen_length is {gen_length}")
    return ids + [tok.eos_id] * (gen_length - len(ids))
