"""The embedded default is registered, loads offline through maskzoo.protein and maskzoo.core, and generates."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core.cli import main
from maskzoo.protein.zoo import DEFAULT_MODEL, ENTRIES, weights_dir

PROTEIN_MODELS = sorted(ENTRIES)


@pytest.mark.parametrize("name", PROTEIN_MODELS)
def test_registered_with_core_registry(name):
    from maskzoo.core.registry import create_model, get_entry, list_models

    assert name in list_models()
    entry = get_entry(name)
    assert "protein" in entry.tags and entry.card is not None
    fresh = create_model(name, pretrained=False)
    assert type(fresh).__name__ == "ESM2" and fresh.config.num_layers == ENTRIES[name][0].num_layers


@pytest.mark.parametrize("name", PROTEIN_MODELS)
def test_embedded_weights_load_and_generate(name, capsys):
    if not (weights_dir(name) / "model.safetensors").is_file():
        pytest.skip(f"{name}: weights not built yet (apps/recipes/protein_dsm_cpu.yaml)")
    from maskzoo.core import checkpoint
    from maskzoo.protein.checkpoints import load_model

    assert (weights_dir(name) / "MODEL_CARD.md").is_file()
    model = load_model(name)
    same = checkpoint.load_model(name)  # through the core registry (entry point discovery)
    ids = torch.tensor([[0, 5, 6, 7, 2]])
    with torch.no_grad():
        assert torch.allclose(model(ids), same(ids).float(), atol=1e-3)
    if name == DEFAULT_MODEL:
        assert (
            main(["protein", "generate", "--num", "2", "--length", "20", "--seed", "1"]) == 0
        )  # no --checkpoint
        lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith(">")]
        assert [len(s) for s in lines] == [20, 20]
