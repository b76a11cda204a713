"""Zoo entries of maskzoo-protein: the embedded default DSM model, registered with ``maskzoo.core.registry``.

The core discovers :func:`register` through the ``maskzoo.models`` entry point, so
``maskzoo.core.load_model("dsm-pdb-small")`` works without importing this package first; it also puts the ESM-2
architecture on the core's checkpoint allow-list.
"""

from __future__ import annotations

from pathlib import Path

from maskzoo.protein.model import ESM2, ESM2Config

#: Name of the embedded default (trained by ``apps/recipes/protein_dsm_cpu.yaml``).
DEFAULT_MODEL = "dsm-pdb-small"
_WEIGHTS_ROOT = Path(__file__).parent / "weights"

#: name -> (architecture config used for ``pretrained=False``, one-line description)
ENTRIES: dict[str, tuple[ESM2Config, str]] = {
    DEFAULT_MODEL: (
        ESM2Config(num_layers=4, embed_dim=192, attention_heads=6, max_seq_len=1026),
        "DSM (ESM-2 architecture, 4 layers, d=192) trained from scratch on ~9.7k PDB chains, 1 CPU thread, < 1 h",
    ),
}


def weights_dir(name: str) -> Path:
    return _WEIGHTS_ROOT / name


def protein_model_names() -> list[str]:
    return sorted(ENTRIES)


def _builder(config: dict) -> ESM2:
    return ESM2(ESM2Config.from_dict(config))


def register() -> None:
    """Register the ESM-2 architecture and every protein zoo entry with the core (idempotent)."""
    from maskzoo.core.registry import register_model
    from maskzoo.protein.checkpoints import register as register_architecture

    register_architecture()
    for name, (config, description) in ENTRIES.items():
        wdir = weights_dir(name)
        register_model(
            name,
            builder=_builder,
            default_config=config.to_dict(),
            weights_dir=wdir if (wdir / "model.safetensors").is_file() else None,
            card=wdir / "MODEL_CARD.md",
            description=description,
            tags=("protein", "esm2", "dsm"),
            overwrite=True,
        )
