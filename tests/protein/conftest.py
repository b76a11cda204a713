"""Shared fixtures for maskzoo-protein tests: tiny fair-esm checkpoints and tiny DSM models."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)

from _protein_helpers import fair_esm_checkpoint_dict, make_fair_esm  # noqa: E402


@pytest.fixture(scope="session")
def fair_esm_pt(tmp_path_factory):
    """(path of a tiny esm2_t2 .pt file, the fair-esm reference model)."""
    ref, _ = make_fair_esm()
    path = tmp_path_factory.mktemp("esm") / "esm2_t2_tiny.pt"
    torch.save(fair_esm_checkpoint_dict(ref), path)
    return path, ref


@pytest.fixture(scope="session")
def tiny_dsm_dir(tmp_path_factory):
    """A tiny random DSM model saved as a maskzoo directory."""
    from maskzoo.protein.checkpoints import save_dsm
    from maskzoo.protein.model import ESM2, ESM2Config

    torch.manual_seed(0)
    model = ESM2(ESM2Config(num_layers=2, embed_dim=32, attention_heads=4, max_seq_len=130))
    path = tmp_path_factory.mktemp("dsm") / "tiny"
    save_dsm(model, path)
    return path
