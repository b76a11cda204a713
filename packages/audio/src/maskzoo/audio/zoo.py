"""Zoo entries of the audio package (entry point ``maskzoo.models: audio``)."""

from __future__ import annotations


def register() -> None:
    """Register the embedded models with the core registry (none yet)."""
