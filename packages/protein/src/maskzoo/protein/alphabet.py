"""The ESM-2 alphabet: residue letters <-> token ids, with validation.

The alphabet is fair-esm's own ``Alphabet.from_architecture("ESM-1b")`` (33 tokens, shared by every ESM-2 size):
``<cls>=0 <pad>=1 <eos>=2 <unk>=3``, the residue letters ``L A G V S E R T I D P K Q N F Y M H W C X B U Z O``,
``. -`` (gap symbols), ``<null_1>`` and ``<mask>=32``. Special-token ids are read from that object and nowhere else
is a literal id written (see PLAN.md).

A sequence of n residues is encoded as ``[<cls>, r_1 .. r_n, <eos>]`` (length n + 2); a DSM-ppi pair as
``[<cls>, target, <eos>, binder, <eos>]`` (Hallee et al., "Diffusion Sequence Models for Enhanced Protein
Representation and Generation", arXiv:2506.08293, DSM-ppi).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch

from maskzoo.core.errors import UserError

#: The 20 canonical amino acids; generation only ever writes these.
CANONICAL = "ACDEFGHIKLMNPQRSTVWY"
#: Letters accepted in input sequences: canonical + X (unknown), B/Z (ambiguous), U (Sec), O (Pyl).
ACCEPTED = CANONICAL + "XBZUO"
#: Letters that mark a position to be generated in a template (``--template "MKT___GGL"``).
TEMPLATE_GAP = "_"


class ProteinAlphabet:
    """Thin, validating wrapper around fair-esm's ESM-1b/ESM-2 ``Alphabet``."""

    def __init__(self) -> None:
        import esm  # fair-esm: the installed dependency that defines the ESM-2 vocabulary

        self.esm = esm.data.Alphabet.from_architecture("ESM-1b")
        self.cls_id: int = self.esm.cls_idx
        self.eos_id: int = self.esm.eos_idx
        self.pad_id: int = self.esm.padding_idx
        self.mask_id: int = self.esm.mask_idx
        self.unk_id: int = self.esm.unk_idx
        self.size: int = len(self.esm.all_toks)

    def __len__(self) -> int:
        return self.size

    @cached_property
    def canonical_ids(self) -> torch.Tensor:
        """LongTensor [20] of the canonical residue ids (the only tokens generation may emit)."""
        return torch.tensor([self.esm.get_idx(a) for a in CANONICAL], dtype=torch.long)

    @cached_property
    def noncanonical_mask(self) -> torch.Tensor:
        """BoolTensor [V]: True for every token generation must never emit (specials, X/B/Z/U/O, gaps)."""
        m = torch.ones(self.size, dtype=torch.bool)
        m[self.canonical_ids] = False
        return m

    @cached_property
    def _letter_to_id(self) -> dict[str, int]:
        return {a: self.esm.get_idx(a) for a in ACCEPTED}

    def validate(self, seq: str, name: str = "sequence") -> str:
        """Upper-case ``seq`` and check every letter is an accepted residue; raise a UserError naming it."""
        s = seq.strip().upper()
        if not s:
            raise UserError(f"{name}: empty sequence")
        table = self._letter_to_id
        for i, a in enumerate(s):
            if a == "*":
                raise UserError(f"{name}: stop codon '*' at position {i + 1}; remove stop codons (a trailing "
                                "'*' of a translated ORF included)")
            if a not in table:
                raise UserError(f"{name}: invalid residue {a!r} at position {i + 1} (allowed: {ACCEPTED})")
        return s

    def residue_ids(self, seq: str, name: str = "sequence") -> list[int]:
        """Token ids of the residues of ``seq`` (validated), without special tokens."""
        table = self._letter_to_id
        return [table[a] for a in self.validate(seq, name)]

    def encode(self, seq: str, name: str = "sequence") -> torch.Tensor:
        """``[<cls>] + residues + [<eos>]`` as a LongTensor [n + 2]."""
        return torch.tensor([self.cls_id, *self.residue_ids(seq, name), self.eos_id], dtype=torch.long)

    def encode_pair(self, target: str, binder: str, name: str = "pair") -> tuple[torch.Tensor, int]:
        """``[<cls>] target [<eos>] binder [<eos>]`` -> (ids [n_t + n_b + 3], index of the first binder token)."""
        t = self.residue_ids(target, f"{name} (target)")
        b = self.residue_ids(binder, f"{name} (binder)")
        ids = [self.cls_id, *t, self.eos_id, *b, self.eos_id]
        return torch.tensor(ids, dtype=torch.long), len(t) + 2

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Residue letters of ``ids``; special tokens are dropped, a remaining mask is written as 'X'."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        specials = {self.cls_id, self.eos_id, self.pad_id}
        out = []
        for i in ids:
            if i in specials:
                continue
            out.append("X" if i == self.mask_id else self.esm.get_tok(i))
        return "".join(out)

    def batch(self, seqs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Right-pad encoded sequences with ``<pad>`` into a LongTensor [B, max_len]."""
        n = max(len(s) for s in seqs)
        out = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out

    def special_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """BoolTensor like ``ids``: True on <cls>, <eos> and <pad> (never masked, never scored)."""
        return (ids == self.cls_id) | (ids == self.eos_id) | (ids == self.pad_id)


_ALPHABET: ProteinAlphabet | None = None


def get_alphabet() -> ProteinAlphabet:
    """The process-wide ESM-2 alphabet (built once)."""
    global _ALPHABET
    if _ALPHABET is None:
        _ALPHABET = ProteinAlphabet()
    return _ALPHABET
