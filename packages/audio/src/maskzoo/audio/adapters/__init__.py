"""Adapters between a frozen audio encoder and a frozen diffusion LM (one module each)."""

from maskzoo.audio.adapters.acoustic import AcousticQFormer
from maskzoo.audio.adapters.lora import LoRALinear, apply_lora
from maskzoo.audio.adapters.qformer import QFormer
from maskzoo.audio.adapters.semantic import SemanticAdapter
from maskzoo.audio.adapters.window_qformer import WindowQFormer

__all__ = ["AcousticQFormer", "LoRALinear", "QFormer", "SemanticAdapter", "WindowQFormer", "apply_lora"]
