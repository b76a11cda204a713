"""Every zoo entry of every installed package, tested automatically (timm style)."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core import load_model
from maskzoo.core.registry import get_entry, list_models


def _shipped(name: str) -> bool:
    entry = get_entry(name)
    return entry.weights_dir is not None and (entry.weights_dir / "config.json").is_file()


@pytest.mark.parametrize("name", list_models())
def test_zoo_entry_has_a_card_and_loads_offline(name: str):
    entry = get_entry(name)
    if not _shipped(name):
        pytest.skip(f"{name}: embedded weights not built in this checkout")
    assert entry.card is not None and entry.card.is_file(), f"{name} ships without MODEL_CARD.md"
    card = entry.card.read_text(encoding="utf-8").lower()
    for word in ("data", "steps", "wall", "hardware"):
        assert word in card, f"{name}: model card does not say its {word}"
    size = sum(f.stat().st_size for f in entry.weights_dir.iterdir())
    assert size < 20 * 2**20, f"{name}: embedded weights are {size / 2**20:.1f} MiB"
    model = load_model(name)
    vocab = model.config.vocab_size if hasattr(model.config, "vocab_size") else None
    mask_id = model.mask_id
    ids = torch.full((2, 12), mask_id, dtype=torch.long)  # an all-mask sequence is valid input for every entry
    with torch.no_grad():
        out = model(ids)
    logits = out.logits if hasattr(out, "logits") else out
    assert logits.shape[:2] == (2, 12) and torch.isfinite(logits).all()
    if vocab is not None:
        assert logits.shape[-1] == vocab and 0 <= mask_id < vocab
