"""The vision-language masked-diffusion model: tower -> projector -> ``inputs_embeds`` of a DiffusionTransformer.

LLaDA-V (You et al. 2025, arXiv 2505.16933) = LLaVA's recipe (Liu et al. 2023) on a masked-diffusion LM:

    F_j = tower(image_j)              [N, C]   patch features of image j at the chosen layer
    H_j = projector(F_j) (+ newline)  [T, D]   T = N (+1 with LLaDA-V's ``image_newline`` vector)
    E   = embed(x_t)                  [L, D]   token embeddings of the (partially masked) sequence
    E[positions of <image> number j]  = H_j    (the prompt holds T placeholder ids per image)
    logits = LM(inputs_embeds=E)      [L, V]   bidirectional; p_theta(x_0 | x_t, images)

Placeholders are never masked (they are prompt), so every forward of the sampler sees the same image
features. Several images per prompt fill their placeholder runs in order (row-major over the batch).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from maskzoo.core.checkpoint import transformer_param_count
from maskzoo.core.config import validate_config
from maskzoo.core.errors import UserError
from maskzoo.core.sampling.model_io import LanguageModelFacts
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig
from maskzoo.vision import anyres
from maskzoo.vision.anyres import AnyRes
from maskzoo.vision.projector import build_projector
from maskzoo.vision.template import DEFAULT_PROMPT
from maskzoo.vision.towers import TowerConfig, VisionTower, set_trainable


@dataclass
class VisionModelConfig(LanguageModelFacts):
    """Everything that defines a vision-language model (saved as the ``config`` of its checkpoint).

    ``lm``: :class:`~maskzoo.core.transformer.TransformerConfig` fields; ``tower``: :class:`TowerConfig`
    fields; ``projector``: ``linear`` / ``mlp2x_gelu``; ``image_token_id``: the tokenizer's ``<image>`` id;
    ``image_newline``: append one learned vector after each image (LLaDA-V ``spatial_unpad``);
    ``tokenizer``: how to rebuild the tokenizer saved beside the weights; ``template``: chat template name;
    ``prompt``: default captioning prompt; ``anyres``: LLaVA-NeXT tiling (:class:`~maskzoo.vision.anyres.AnyRes`
    as a dict; None: every image is one view of ``tokens_per_image`` features); ``suppress_tokens``: ids never
    generated (LLaDA-V's ``generate_with_embeds`` forbids end-of-text and the chat-turn ids at masked positions);
    ``stop_tokens``: LLaDA-V's ``stopping_criteria`` (``<|eot_id|>``): once revealed, decoding goes on only before
    it (confidence samplers; see :mod:`maskzoo.core.sampling.stop_tokens`); ``video_pool``: how video frames' feature maps are halved (``bilinear`` | ``average`` | ``max``, LLaDA-V's
    ``mm_spatial_pool_mode``).
    """

    lm: dict[str, Any]
    tower: dict[str, Any]
    projector: str = "mlp2x_gelu"
    image_token_id: int = 0
    image_newline: bool = False
    tokenizer: dict[str, Any] = field(default_factory=dict)
    template: str = "word"
    prompt: str = DEFAULT_PROMPT
    anyres: dict[str, Any] | None = None
    suppress_tokens: list[int] = field(default_factory=list)
    stop_tokens: list[int] = field(default_factory=list)
    video_pool: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VisionModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"vision model config: unknown key(s) {unknown}")
        if "lm" not in d or "tower" not in d:
            raise UserError("vision model config: needs 'lm' and 'tower'")
        if d.get("video_pool", "bilinear") not in _POOLS:
            raise UserError(f"vision model config: video_pool {d['video_pool']!r} is not one of {sorted(_POOLS)}")
        validate_config(TransformerConfig, d["lm"], "vision model config: lm", ranges=_LM_RANGES,
                        param_count=transformer_param_count)
        validate_config(TowerConfig, d["tower"], "vision model config: tower", ranges={"image_size": (1, 16384)})
        return cls(**d)


_LM_RANGES = {"vocab_size": (1, 1 << 24), "d_model": (1, 1 << 16), "n_layers": (1, 1024), "n_heads": (1, 1024),
              "n_kv_heads": (1, 1024), "mlp_hidden": (1, 1 << 20), "max_seq_len": (1, 1 << 24)}


def vision_param_count(cfg: dict[str, Any]) -> int:
    """Parameters of the language model a vision config describes (the core's size check before building); its
    ``lm`` fields are checked first, so a wrong type is a UserError naming the field."""
    validate_config(TransformerConfig, cfg.get("lm"), "vision model config: lm", ranges=_LM_RANGES)
    return transformer_param_count(cfg["lm"])


def _tower_device() -> contextlib.AbstractContextManager:
    """Build towers on real memory even under ``torch.device('meta')`` (used by the core's fast loader):
    towers probe their output shape with a forward pass and some keep non-persistent buffers."""
    if torch.get_default_device().type == "meta":
        return torch.device("cpu")
    return contextlib.nullcontext()


class VisionLanguageModel(nn.Module):
    """``forward(input_ids, pixel_values | image_features, attention_mask) -> logits [B, L, V]``."""

    def __init__(self, config: VisionModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lm = DiffusionTransformer(TransformerConfig.from_dict(dict(config.lm)))
        with _tower_device():
            self.tower = VisionTower(TowerConfig(**config.tower))
        d = self.lm.config.d_model
        self.projector = build_projector(config.projector, self.tower.out_dim, d)
        self.image_newline = nn.Parameter(torch.zeros(d)) if config.image_newline else None
        if not 0 <= config.image_token_id < self.lm.config.vocab_size:
            raise UserError(f"image_token_id {config.image_token_id} is outside the vocabulary")
        set_trainable(self.tower, False)  # frozen unless a training stage unfreezes it

    # ------------------------------------------------------------------ facts
    @property
    def mask_id(self) -> int:
        return self.lm.mask_id

    @property
    def image_token_id(self) -> int:
        return self.config.image_token_id

    @property
    def tokens_per_image(self) -> int:
        """Placeholder positions one image occupies in the prompt."""
        return self.tower.num_tokens + (1 if self.image_newline is not None else 0)

    @property
    def anyres(self) -> AnyRes | None:
        """The image tiling of a published LLaDA-V model, or None (one view per image)."""
        return AnyRes.from_dict(self.config.anyres) if self.config.anyres else None

    @property
    def tower_trainable(self) -> bool:
        return any(p.requires_grad for p in self.tower.parameters())

    @property
    def gradient_checkpointing(self) -> bool:
        return self.lm.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.lm.gradient_checkpointing = value

    def train(self, mode: bool = True) -> VisionLanguageModel:
        """A frozen tower stays in eval mode (its batch-norm statistics must not move either)."""
        super().train(mode)
        if not self.tower_trainable:
            self.tower.eval()
        return self

    # ------------------------------------------------------------------ images
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, 3, H, W] (preprocessed) -> projected features [N, T, D]."""
        pixel_values = pixel_values.to(self.lm.device, self.lm.dtype)  # the weights' dtype (bf16 on a GPU)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.tower_trainable):
            feats = self.tower(pixel_values)  # [N, n, C]
        h = self.projector(feats)  # [N, n, D]
        if self.image_newline is not None:
            nl = self.image_newline.to(h.dtype).expand(h.shape[0], 1, -1)  # [N, 1, D]
            h = torch.cat([h, nl], dim=1)  # [N, n+1, D]
        return h

    def encode_image_tiled(self, image: Image.Image) -> torch.Tensor:
        """One image through :mod:`~maskzoo.vision.anyres` tiling -> its features ``[N, D]`` (N depends on the
        image's size: :meth:`image_token_count`)."""
        tiling = self.anyres
        if tiling is None or self.image_newline is None:
            raise UserError("this model has no anyres tiling (or no image_newline to close its rows)")
        tile = self.tower.image_size[0]
        views, grid = anyres.views(image, tile, tiling)
        pixels = self.tower.preprocess(views).to(self.lm.device, self.lm.dtype)  # [1 + r c, 3, S, S]
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.tower_trainable):
            feats = self.tower(pixels)  # [1 + r c, T, C]
        return anyres.merge(self.projector(feats), grid, image.size, self.image_newline, tiling.max_patches)

    def encode_video(self, frames: list[Image.Image]) -> torch.Tensor:
        """Video frames -> one feature sequence ``[F ceil(t/2)^2 (+1), D]`` (LLaDA-V / LLaVA-OneVision video path:
        each frame one squashed view, its ``t x t`` projected map halved by ``video_pool`` (stride 2), all frames
        flattened in order, one ``image_newline`` at the end)."""
        pixels = self.tower.preprocess(frames).to(self.lm.device, self.lm.dtype)  # [F, 3, S, S]
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.tower_trainable):
            feats = self.projector(self.tower(pixels))  # [F, t t, D]
        n, T, D = feats.shape
        t = math.isqrt(T)
        fmap = feats.view(n, t, t, D).permute(0, 3, 1, 2)  # [F, D, t, t]
        pooled = _POOLS[self.config.video_pool](fmap)  # [F, D, t', t']
        out = pooled.permute(0, 2, 3, 1).reshape(-1, D)  # [F t' t', D]
        if self.image_newline is not None:
            out = torch.cat([out, self.image_newline.to(out.dtype)[None]], dim=0)  # [F t'^2 + 1, D]
        return out

    def image_token_count(self, image: Image.Image) -> int:
        """Placeholder positions ``image`` occupies in a prompt (``tokens_per_image`` without tiling)."""
        tiling = self.anyres
        if tiling is None:
            return self.tokens_per_image
        side = math.isqrt(self.tower.num_tokens)
        return anyres.anyres_token_count(image.size, self.tower.image_size[0], side, tiling)

    def embed(self, input_ids: torch.Tensor, image_features: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings [B, L, D] with the image placeholders overwritten by ``image_features`` [N, T, D].

        The k-th run of T placeholders (row-major over the batch) receives image k.
        """
        is_image = input_ids == self.config.image_token_id  # [B, L]
        n_slots = int(is_image.sum())
        n_feats = 0 if image_features is None else image_features.shape[0] * image_features.shape[1]
        if n_slots != n_feats:
            t = self.tokens_per_image
            raise UserError(
                f"the prompt has {n_slots // max(t, 1)} <image> placeholder(s) of {t} tokens but "
                f"{0 if image_features is None else image_features.shape[0]} image(s) were given"
            )
        emb = self.lm.embed_tokens(input_ids)  # [B, L, D]
        if n_slots:
            feats = image_features.reshape(-1, emb.shape[-1]).to(emb.dtype)  # [N*T, D]
            emb = emb.masked_scatter(is_image[..., None], feats)  # [B, L, D]
        return emb

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [B, L, V]. Give ``pixel_values`` [N, 3, H, W] or precomputed ``image_features`` [N, T, D]
        (from :meth:`encode_images`) for the N images whose placeholders the prompts hold."""
        if pixel_values is not None:
            if image_features is not None:
                raise ValueError("give pixel_values or image_features, not both")
            image_features = self.encode_images(pixel_values)  # [N, T, D]
        emb = self.embed(input_ids, image_features)  # [B, L, D]
        return self.lm(inputs_embeds=emb, attention_mask=attention_mask)  # [B, L, V]

    def denoiser(self, image_features: torch.Tensor | None) -> ImageDenoiser:
        """A callable ``ids [B, L] -> logits`` for :func:`maskzoo.core.generate` that splices the same image
        features (computed once per batch) into every forward of the sampler (see :class:`ImageDenoiser`)."""
        return ImageDenoiser(self, image_features)


class ImageDenoiser:
    """``VisionLanguageModel`` with fixed image features, as the core sampler calls a model.

    It passes the core's ``logits_slice`` (the output layer runs on the decoded positions only: with LLaDA-V's
    126k-token vocabulary and thousands of image positions the full logits would be gigabytes) and its key/value
    cache (``generate(cache="prefix" | "dual")``): a call on a slice of columns embeds the image features only
    when the slice holds the image placeholders (the prefix), never part of them.
    """

    supports_kv_cache = True

    def __init__(self, model: VisionLanguageModel, image_features: torch.Tensor | None) -> None:
        self.model = model
        self.image_features = image_features  # [N, T, D] or None
        self.mask_id = model.mask_id
        self.vocab_size = model.lm.config.vocab_size
        self.max_seq_len = model.lm.config.max_seq_len

    def parameters(self):
        return self.model.parameters()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, kv_cache: Any = None,
                 cache_position: int = 0, logits_slice: slice | None = None) -> torch.Tensor:
        has_images = bool((input_ids == self.model.image_token_id).any())
        emb = self.model.embed(input_ids, self.image_features if has_images else None)  # [B, n, D]
        return self.model.lm(inputs_embeds=emb, attention_mask=attention_mask, kv_cache=kv_cache,
                             cache_position=cache_position, logits_slice=logits_slice)  # [B, n', V]

    forward = __call__


_POOLS = {  # [F, D, t, t] -> [F, D, t', t'] with stride 2 (LLaVA-OneVision's get_2dPool)
    "bilinear": lambda x: F.interpolate(x, size=[math.ceil(x.shape[2] / 2), math.ceil(x.shape[3] / 2)],
                                        mode="bilinear"),
    "average": lambda x: F.avg_pool2d(x, 2),
    "max": lambda x: F.max_pool2d(x, 2),
}


VIDEO_POOLS = tuple(_POOLS)


def register() -> None:
    """Put the architecture on the core checkpoint allow-list (so ``maskzoo.core.load_model`` loads it)."""
    from maskzoo.core.checkpoint import ARCHITECTURES, register_architecture

    if "VisionLanguageModel" not in ARCHITECTURES:
        register_architecture("VisionLanguageModel", VisionLanguageModel, VisionModelConfig,
                              param_count=vision_param_count)


register()
