"""Deliberation re-masks the least confident 30% of a hypothesis and keeps the rest."""

from __future__ import annotations

import pytest
import torch
from _audio_fixtures import tiny_model

from maskzoo.audio.deliberation import deliberate
from maskzoo.audio.tasks import answer_ids
from maskzoo.core.errors import UserError


def test_no_remasking_returns_the_hypothesis_and_30_percent_changes_at_most_three_tokens():
    m = tiny_model()
    wav = torch.randn(m.window_samples) * 0.1
    hyp = "four two nine"
    assert deliberate(m, wav, hyp, remask_ratio=0.0) == hyp
    out = deliberate(m, wav, hyp, remask_ratio=0.3)
    tok = m.tokenizer
    a, b = answer_ids(tok, hyp, 8), tok.encode(out)
    b = b + [tok.eos_id] * (8 - len(b))
    assert sum(x != y for x, y in zip(a, b)) <= 3  # ceil(0.3 * 8) = 3 positions re-decoded
    full = deliberate(m, wav, hyp, remask_ratio=1.0)
    assert isinstance(full, str)


def test_bad_settings():
    m = tiny_model()
    with pytest.raises(UserError, match="chunks"):
        deliberate(m, torch.randn(100), "one", chunks=3)
    with pytest.raises(UserError, match="one window"):
        deliberate(m, torch.randn(m.window_samples + 1), "one")
