"""maskzoo-protein: DSM (masked-diffusion ESM-2) protein generation, embedding and variant scoring.

Public API (imported lazily, so ``import maskzoo.protein`` stays cheap)::

    from maskzoo.protein import load_model, ESM2, ESM2Config
    from maskzoo.protein import generate_proteins, fill_templates, design_binders, SamplerSettings
    from maskzoo.protein import embed_sequences, score_sequences, score_mutants, compare_sets, run_probe
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ESM2": "model",
    "ESM2Config": "model",
    "dsm_from_esm2": "model",
    "load_model": "checkpoints",
    "load_fair_esm": "checkpoints",
    "save_dsm": "checkpoints",
    "get_alphabet": "alphabet",
    "read_fasta": "fasta",
    "write_fasta": "fasta",
    "SamplerSettings": "generation",
    "generate_proteins": "generation",
    "fill_templates": "generation",
    "design_binders": "generation",
    "embed_sequences": "embed",
    "score_mutants": "variants",
    "score_sequences": "scoring",
    "SequenceScore": "scoring",
    "compare_sets": "metrics",
    "run_probe": "probe",
    "DEFAULT_MODEL": "zoo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"maskzoo.protein.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'maskzoo.protein' has no attribute {name!r}")
