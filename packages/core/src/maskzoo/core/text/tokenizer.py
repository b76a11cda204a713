"""Character tokenizer that owns its special-token ids.

Ids ``0 .. len(chars)-1`` are the characters in the order given; then ``[PAD]``, ``[EOS]`` and ``[MASK]``.
No other module writes a literal mask id: they ask the tokenizer (or the model config it produced).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from maskzoo.core.errors import UserError

SPECIALS = ("[PAD]", "[EOS]", "[MASK]")


@dataclass(frozen=True)
class CharTokenizer:
    """Maps characters to ids and back; ``chars`` is the exact alphabet, in id order."""

    chars: str

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharTokenizer: duplicate characters in the alphabet")

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    @property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    @property
    def pad_id(self) -> int:
        return len(self.chars)

    @property
    def eos_id(self) -> int:
        return len(self.chars) + 1

    @property
    def mask_id(self) -> int:
        return len(self.chars) + 2

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(SPECIALS)

    def encode(self, text: str) -> torch.Tensor:
        """text -> LongTensor [len(text)]; an unknown character is a UserError naming it."""
        index = self._index
        try:
            return torch.tensor([index[c] for c in text], dtype=torch.long)
        except KeyError as e:
            raise UserError(f"character {e.args[0]!r} is not in the model's alphabet") from None

    def decode(self, ids: torch.Tensor | list[int], *, stop_at_eos: bool = True) -> str:
        """ids -> text. Special tokens are dropped; decoding stops at the first EOS when asked."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == self.eos_id and stop_at_eos:
                break
            if 0 <= i < len(self.chars):
                out.append(self.chars[i])
        return "".join(out)

    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": self.chars, "specials": list(SPECIALS)})

    @classmethod
    def from_json(cls, s: str) -> CharTokenizer:
        d = json.loads(s)
        if d.get("type") != "char" or tuple(d.get("specials", ())) != SPECIALS:
            raise UserError("tokenizer.json is not a maskzoo character tokenizer")
        return cls(d["chars"])
