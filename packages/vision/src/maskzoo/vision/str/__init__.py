"""Scene-text recognition with masked diffusion: MDiff4STR (Du et al. 2025, arXiv 2512.01422) at CPU scale.

Read a word::

    from maskzoo.vision.str import load_str_model, read_text
    from maskzoo.vision.str.images import load_crop

    model = load_str_model()                                 # the embedded vision-str-mdiff
    [r] = read_text(model, [load_crop("sign.png")], mode="parallel")
    print(r.text, r.char_confidences)

Modules: alphabet (ids), encoder / decoder / model (SVTRv2-style encoder + post-LN diffusion decoder), noise
(six masking strategies + replacement noise), loss, inference (five modes, ``read_text``), render (synthetic
crops), realdata (the IIIT5K crops shipped in ``data/``), images (loading, resizing), data (training stream),
metrics, train (recipes), zoo, cli.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Alphabet": "maskzoo.vision.str.alphabet",
    "MODES": "maskzoo.vision.str.inference",
    "Reading": "maskzoo.vision.str.inference",
    "read_text": "maskzoo.vision.str.inference",
    "STRConfig": "maskzoo.vision.str.model",
    "STRModel": "maskzoo.vision.str.model",
    "load_str_model": "maskzoo.vision.str.zoo",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: ``maskzoo vision --help`` does not import torch
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
