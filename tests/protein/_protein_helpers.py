"""Helpers for maskzoo-protein tests: tiny fair-esm reference models in fair-esm's checkpoint layout."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "packages" / "protein" / "src" / "maskzoo" / "protein" / "data"


def make_fair_esm(
    num_layers: int = 2, embed_dim: int = 32, heads: int = 4, seed: int = 0, token_dropout: bool = True
):
    """A randomly initialised fair-esm ESM2 (the installed reference implementation) with non-trivial biases."""
    import esm

    torch.manual_seed(seed)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    ref = esm.model.esm2.ESM2(
        num_layers=num_layers,
        embed_dim=embed_dim,
        attention_heads=heads,
        alphabet=alphabet,
        token_dropout=token_dropout,
    )
    with torch.no_grad():  # fair-esm zero-initialises some biases / LayerNorms: randomise everything
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ref.eval(), alphabet


def fair_esm_checkpoint_dict(ref) -> dict:
    """``ref`` in fair-esm's ESM-2 file layout: prefixed state dict + ``cfg["model"]`` Namespace (args=None)."""
    state = {}
    for k, v in ref.state_dict().items():
        if k.startswith("contact_head."):
            continue  # contact regression lives in the separate *-contact-regression.pt
        prefix = "encoder." if k.startswith("lm_head.") else "encoder.sentence_encoder."
        state[prefix + k] = v.clone()
    cfg = argparse.Namespace(
        encoder_layers=ref.num_layers,
        encoder_embed_dim=ref.embed_dim,
        encoder_attention_heads=ref.attention_heads,
        token_dropout=ref.token_dropout,
    )
    return {"args": None, "cfg": {"model": cfg}, "model": state}
