"""maskzoo-vision: LLaDA-V style vision-language masked diffusion (arXiv 2505.16933).

A vision tower (any timm / open_clip model, features from a chosen layer), a projector (``mlp2x_gelu`` or
``linear``) and the core's :class:`~maskzoo.core.transformer.DiffusionTransformer`, trained on responses only
and sampled with the core's :func:`~maskzoo.core.generate`. See the package README for the shell commands.
"""

from maskzoo.vision.caption import Captioner, SamplerSettings, caption
from maskzoo.vision.checkpoint import DEFAULT_MODEL, load_vision_model, save_vision_model
from maskzoo.vision.images import load_frames, load_image
from maskzoo.vision.model import VisionLanguageModel, VisionModelConfig
from maskzoo.vision.scenes import SceneGenerator
from maskzoo.vision.towers import TowerConfig, VisionTower

__all__ = [
    "DEFAULT_MODEL",
    "Captioner",
    "SamplerSettings",
    "SceneGenerator",
    "TowerConfig",
    "VisionLanguageModel",
    "VisionModelConfig",
    "VisionTower",
    "caption",
    "load_frames",
    "load_image",
    "load_vision_model",
    "save_vision_model",
]
