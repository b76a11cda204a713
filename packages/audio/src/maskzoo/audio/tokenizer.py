"""A word-level tokenizer for the embedded digit models; it owns every special id.

Text is lower-cased and split into words and the punctuation marks ``. : ? ,``; a digit character becomes its
word ("7" -> "seven"). Words outside the vocabulary raise a :class:`UserError` that lists what the model knows
(a tiny model trained on a closed task set cannot read anything else).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from maskzoo.core.errors import UserError

SPECIALS = ("<pad>", "<mask>", "<bos>", "<eos>", "<sep>", "<audio>", "<sil>")
_TOKEN = re.compile(r"[a-z]+|[0-9]|[.:?,]|\S")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class WordTokenizer:
    """``encode(text) -> ids``, ``decode(ids) -> text``; ``pad_id``, ``mask_id``, ... are properties."""

    def __init__(self, words: Sequence[str]) -> None:
        dup = sorted({w for w in words if list(words).count(w) > 1} | (set(words) & set(SPECIALS)))
        if dup:
            raise UserError(f"tokenizer: duplicate or reserved word(s) {dup}")
        self.vocab = [*SPECIALS, *words]
        self.index = {w: i for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def _id(self, name: str) -> int:
        return self.index[name]

    pad_id = property(lambda self: self._id("<pad>"))
    mask_id = property(lambda self: self._id("<mask>"))
    bos_id = property(lambda self: self._id("<bos>"))
    eos_id = property(lambda self: self._id("<eos>"))
    sep_id = property(lambda self: self._id("<sep>"))
    audio_id = property(lambda self: self._id("<audio>"))
    sil_id = property(lambda self: self._id("<sil>"))

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(range(len(SPECIALS)))

    def words(self, text: str) -> list[str]:
        out = []
        for tok in _TOKEN.findall(text.lower()):
            out.append(_DIGITS[int(tok)] if tok.isdigit() else tok)
        return out

    def encode(self, text: str) -> list[int]:
        words = self.words(text)
        unknown = sorted({w for w in words if w not in self.index or w in SPECIALS})
        if unknown:
            known = " ".join(self.vocab[len(SPECIALS):])
            raise UserError(f"unknown word(s) {unknown}; this model knows: {known}")
        return [self.index[w] for w in words]

    def decode(self, ids: Sequence[int]) -> str:
        """Words up to the first ``<eos>``, specials dropped, punctuation attached to the previous word."""
        words: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in self.special_ids or not 0 <= i < len(self.vocab):
                continue
            w = self.vocab[i]
            if w in ".:?," and words:
                words[-1] += w
            else:
                words.append(w)
        return " ".join(words)

    def to_dict(self) -> dict:
        return {"words": self.vocab[len(SPECIALS):]}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        return cls(list(d["words"]))
