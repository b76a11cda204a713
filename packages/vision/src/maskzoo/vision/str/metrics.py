"""Scene-text recognition metrics.

- ``word_acc_36``: the standard STR protocol (e.g. Baek et al. 2019, "What is wrong with scene text
  recognition model comparisons?"): prediction and label are lower-cased and reduced to the 36 characters
  0-9a-z, then compared exactly.
- ``word_acc_94``: exact, case-sensitive match over the 94 printable characters.
- ``one_minus_ned``: mean of ``1 - Levenshtein(pred, label) / max(|pred|, |label|)`` (1 for two empty strings),
  on the 94-character strings (ICDAR 2019 normalised edit distance).
"""

from __future__ import annotations

from collections.abc import Sequence

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import CHARSET_36, PRINTABLE_94

_KEEP_36 = set(CHARSET_36)
_KEEP_94 = set(PRINTABLE_94)


def to_36(text: str) -> str:
    return "".join(c for c in text.lower() if c in _KEEP_36)


def to_94(text: str) -> str:
    return "".join(c for c in text if c in _KEEP_94)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (rapidfuzz, imported lazily)."""
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:  # pragma: no cover - rapidfuzz is a dependency of maskzoo-vision
        raise UserError("STR metrics need rapidfuzz: pip install rapidfuzz") from None
    return int(Levenshtein.distance(a, b))


def one_minus_ned(pred: str, label: str) -> float:
    n = max(len(pred), len(label))
    return 1.0 if n == 0 else 1.0 - edit_distance(pred, label) / n


def str_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """``{"word_acc_36", "word_acc_94", "one_minus_ned", "n"}`` (accuracies as fractions in [0, 1])."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    n = len(labels)
    if n == 0:
        return {"word_acc_36": 0.0, "word_acc_94": 0.0, "one_minus_ned": 0.0, "n": 0}
    pairs = list(zip(predictions, labels))
    return {
        "word_acc_36": sum(to_36(p) == to_36(t) for p, t in pairs) / n,
        "word_acc_94": sum(to_94(p) == to_94(t) for p, t in pairs) / n,
        "one_minus_ned": sum(one_minus_ned(to_94(p), to_94(t)) for p, t in pairs) / n,
        "n": n,
    }
