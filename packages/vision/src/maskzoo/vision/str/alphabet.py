"""The STR alphabet: EOS = 0, the 94 printable ASCII characters, MASK, PAD (MDiff4STR, arXiv 2512.01422).

A label of ``n <= max_len`` characters becomes ``max_len + 1`` ids::

    [c_1, ..., c_n, EOS, PAD, ..., PAD]        (targets; PAD is never scored)

The decoder predicts only the first :attr:`Alphabet.num_classes` ids (EOS and the characters): MASK and PAD are
inputs, never outputs. Every special id used anywhere in :mod:`maskzoo.vision.str` is read from here.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

#: the 94 printable, non-space ASCII characters, in ASCII order
PRINTABLE_94 = "".join(chr(c) for c in range(33, 127))
#: the standard 36-character evaluation set (digits + lowercase)
CHARSET_36 = string.digits + string.ascii_lowercase


@dataclass(frozen=True)
class Alphabet:
    """Character <-> id mapping with the special ids.

    Attributes:
        charset: the characters, ids 1..len(charset).
        max_len: longest label in characters (sequence length is ``max_len + 1``).
    """

    charset: str = PRINTABLE_94
    max_len: int = 25

    def __post_init__(self) -> None:
        if len(set(self.charset)) != len(self.charset):
            raise ValueError("charset has repeated characters")
        if self.max_len < 1:
            raise ValueError("max_len must be >= 1")

    # --- special ids ----------------------------------------------------------------------------------------
    @property
    def eos_id(self) -> int:
        return 0

    @property
    def mask_id(self) -> int:
        return len(self.charset) + 1

    @property
    def pad_id(self) -> int:
        return len(self.charset) + 2

    @property
    def bos_id(self) -> int:
        """Start token of the autoregressive baseline: the MASK id (the vocabulary has no separate BOS)."""
        return self.mask_id

    @property
    def ctc_blank_id(self) -> int:
        """Blank of the auxiliary CTC head (:mod:`maskzoo.vision.str.loss`): the EOS id, which never occurs
        inside a label."""
        return self.eos_id

    @property
    def num_classes(self) -> int:
        """Ids the decoder predicts: EOS and the characters."""
        return len(self.charset) + 1

    @property
    def vocab_size(self) -> int:
        """Ids the decoder reads: EOS, characters, MASK, PAD."""
        return len(self.charset) + 3

    @property
    def seq_len(self) -> int:
        return self.max_len + 1

    # --- text <-> ids ---------------------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        """``text`` with characters outside the charset dropped (case kept), cut to ``max_len``."""
        keep = set(self.charset)
        return "".join(c for c in text if c in keep)[: self.max_len]

    def encode(self, text: str) -> Tensor:
        """Target ids ``[max_len + 1]``: characters, EOS, PAD... A character outside the charset is an error."""
        if len(text) > self.max_len:
            raise UserError(f"label {text!r} is longer than {self.max_len} characters")
        index = self._index()
        ids = torch.full((self.seq_len,), self.pad_id, dtype=torch.long)  # [L]
        for i, c in enumerate(text):
            if c not in index:
                raise UserError(f"label {text!r}: character {c!r} is not in the alphabet")
            ids[i] = index[c]
        ids[len(text)] = self.eos_id
        return ids

    def encode_batch(self, texts: list[str]) -> Tensor:
        """``[B, max_len + 1]`` targets."""
        return torch.stack([self.encode(t) for t in texts]) if texts else torch.empty(0, self.seq_len, dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        """Characters up to the first EOS, at most ``max_len`` (MASK, PAD and out-of-range ids are skipped)."""
        out = []
        for i in (ids.tolist() if isinstance(ids, Tensor) else ids)[: self.max_len]:
            if i == self.eos_id:
                break
            if 1 <= i <= len(self.charset):
                out.append(self.charset[i - 1])
        return "".join(out)

    def lengths(self, targets: Tensor) -> Tensor:
        """Label lengths ``[B]`` (characters before EOS) of target ids ``[B, L]``."""
        return (targets == self.eos_id).int().argmax(dim=-1)  # [B]

    def _index(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.charset)}
