"""Five exact-answer tasks on digit strings, one tokenizer, a batch maker and an exact-match scorer.

Every example is ``[PAD ... task letter, input, '='] [answer, EOS ...]``: a prompt left-padded to ``PROMPT_LEN``
tokens and an answer region of ``ANSWER_LEN`` tokens (the answer, then EOS fill). With ``n = DIGITS``:

==========  ==============  =========================================================================
task        prompt          answer
==========  ==============  =========================================================================
copy        ``C`` d1..dn =  the digits
reverse     ``R`` d1..dn =  the digits reversed
sort        ``S`` d1..dn =  the digits in increasing order
add         ``A`` a + b =   a + b, ``n/2``-digit operands, the sum with ``n/2 + 1`` digits (leading 0)
pair        ``P`` a | b =   ``a b`` or ``b a`` (``n/2`` digits each): two valid answers, drawn 50/50
==========  ==============  =========================================================================

``pair`` is the case that parallel decoding can break: tokens drawn independently from their marginals may mix
the two answers. The tokenizer owns the special ids; nothing else writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

DIGITS = 6
PROMPT_LEN = 2 + DIGITS + 1  # task letter, up to n digits and a separator, '='
ANSWER_LEN = 8


class SyntheticTokenizer:
    """Characters ``0-9 + | = A C P R S`` then [PAD], [EOS], [MASK]."""

    chars = "0123456789+|=ACPRS"

    def __init__(self) -> None:
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.pad_id, self.eos_id, self.mask_id = len(self.chars), len(self.chars) + 1, len(self.chars) + 2
        self.vocab_size = len(self.chars) + 3

    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        """Characters of the ids, stopping at the first EOS; [PAD] and [MASK] are left out / shown as '_'."""
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i < len(self.chars):
                out.append(self.chars[i])
            elif i == self.mask_id:
                out.append("_")
        return "".join(out)


def _digits(g: torch.Generator, n: int) -> str:
    return "".join(str(int(d)) for d in torch.randint(0, 10, (n,), generator=g))


def _copy(g):
    s = _digits(g, DIGITS)
    return f"C{s}=", [s]


def _reverse(g):
    s = _digits(g, DIGITS)
    return f"R{s}=", [s[::-1]]


def _sort(g):
    s = _digits(g, DIGITS)
    return f"S{s}=", ["".join(sorted(s))]


def _add(g):
    h = DIGITS // 2
    a, b = _digits(g, h), _digits(g, h)
    return f"A{a}+{b}=", [str(int(a) + int(b)).zfill(h + 1)]


def _pair(g):
    h = DIGITS // 2
    a, b = _digits(g, h), _digits(g, h)
    return f"P{a}|{b}=", [a + b, b + a]


TASKS: dict[str, Callable[[torch.Generator], tuple[str, list[str]]]] = {
    "copy": _copy, "reverse": _reverse, "sort": _sort, "add": _add, "pair": _pair,
}


def make_batch(tok: SyntheticTokenizer, n: int, g: torch.Generator, tasks: Sequence[str] = tuple(TASKS)
               ) -> tuple[Tensor, Tensor, list[list[str]]]:
    """``n`` examples of the given tasks, round robin: ids [n, P + A], maskable [n, P + A] (the answer region) and
    the valid answers of each example (for the pair task one of the two is drawn as the training target)."""
    ids = torch.full((n, PROMPT_LEN + ANSWER_LEN), tok.pad_id, dtype=torch.long)  # [n, T]
    answers = []
    for i in range(n):
        prompt, valid = TASKS[tasks[i % len(tasks)]](g)
        target = valid[int(torch.randint(0, len(valid), (1,), generator=g))]
        p = tok.encode(prompt)
        ids[i, PROMPT_LEN - len(p) : PROMPT_LEN] = torch.tensor(p)
        a = tok.encode(target) + [tok.eos_id] * (ANSWER_LEN - len(target))
        ids[i, PROMPT_LEN:] = torch.tensor(a)
        answers.append(valid)
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:, PROMPT_LEN:] = True
    return ids, maskable, answers


def accuracy(tok: SyntheticTokenizer, generated: Tensor, answers: Sequence[Sequence[str]]) -> float:
    """Exact-match rate: the decoded answer region (up to its first EOS) is one of the valid answers."""
    hits = sum(tok.decode(row.tolist()) in valid for row, valid in zip(generated, answers, strict=True))
    return hits / max(1, len(answers))
