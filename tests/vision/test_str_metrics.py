"""Word accuracy on the 36- and 94-character sets and 1 - normalised edit distance."""

from __future__ import annotations

import pytest

from maskzoo.vision.str.metrics import one_minus_ned, str_metrics, to_36


def test_36_char_protocol_ignores_case_and_symbols():
    assert to_36("Hello, World!") == "helloworld"
    m = str_metrics(["HELLO", "it's", "Caf"], ["hello", "its", "cafe"])
    assert m["word_acc_36"] == pytest.approx(2 / 3)
    assert m["word_acc_94"] == 0.0 and m["n"] == 3


def test_94_char_accuracy_is_case_sensitive():
    m = str_metrics(["Rescue", "rescue"], ["Rescue", "Rescue"])
    assert m["word_acc_94"] == 0.5 and m["word_acc_36"] == 1.0


def test_one_minus_ned_by_hand():
    assert one_minus_ned("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert one_minus_ned("", "") == 1.0 and one_minus_ned("", "ab") == 0.0
    m = str_metrics(["kitten", "ab"], ["sitting", "ab"])
    assert m["one_minus_ned"] == pytest.approx((1 - 3 / 7 + 1) / 2)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        str_metrics(["a"], [])
