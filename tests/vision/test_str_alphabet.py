"""The STR alphabet owns the special ids: EOS = 0, 94 printable characters, MASK, PAD."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import PRINTABLE_94, Alphabet


def test_special_ids_and_sizes():
    a = Alphabet()
    assert len(PRINTABLE_94) == 94 and " " not in PRINTABLE_94
    assert a.eos_id == 0
    assert a.mask_id == 95 and a.pad_id == 96
    assert a.num_classes == 95 and a.vocab_size == 97 and a.seq_len == 26
    assert a.bos_id == a.mask_id


def test_encode_layout_and_round_trip():
    a = Alphabet()
    ids = a.encode("Ab9!")
    assert ids.shape == (26,)
    assert ids[:4].tolist() == [PRINTABLE_94.index(c) + 1 for c in "Ab9!"]
    assert ids[4] == a.eos_id and (ids[5:] == a.pad_id).all()
    assert a.decode(ids) == "Ab9!"
    batch = a.encode_batch(["x", "hello"])
    assert a.lengths(batch).tolist() == [1, 5]


def test_decode_stops_at_eos_and_skips_specials():
    a = Alphabet()
    x = torch.tensor([1, a.mask_id, 2, a.pad_id, 0, 3])
    assert a.decode(x) == PRINTABLE_94[0] + PRINTABLE_94[1]


def test_empty_label_is_just_eos():
    a = Alphabet()
    assert a.encode("")[0] == a.eos_id and a.decode(a.encode("")) == ""


@pytest.mark.parametrize("bad", ["a b", "é", "x" * 26])
def test_bad_labels_are_user_errors(bad):
    with pytest.raises(UserError):
        Alphabet().encode(bad)


def test_normalize_drops_unknown_characters_and_truncates():
    a = Alphabet(max_len=4)
    assert a.normalize("a bé-cdef") == "ab-c"
