"""Captioning with a vision-language masked-diffusion model.

For a batch of images the projected image features are computed once, the prompt
``bos user <image> text eot assistant`` (with T placeholders per image) is repeated per row (images that a
tiling model turns into different numbers of features are sampled in separate groups), and the core
sampler (:func:`maskzoo.core.generate`, LLaDA low-confidence remasking by default, Nie et al. 2025 sec. 2.4)
fills ``gen_length`` masked positions in ``steps`` steps, splicing the image features into every forward.
The caption is the decoded text up to the first end-of-turn / end-of-sequence token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.core.generation_config import resolve_generation, validate_generation_block
from maskzoo.core.progress import progress as progress_bar
from maskzoo.core.sampling import CONFIDENCE_RULES, generate
from maskzoo.vision.data import check_prompt, open_image
from maskzoo.vision.images import to_rgb
from maskzoo.vision.model import VisionLanguageModel
from maskzoo.vision.template import encode_prompt, get_template
from maskzoo.vision.tokenizer import Tokenizer

ImageLike = Image.Image | str | os.PathLike


#: sampler settings when neither the call nor the checkpoint's ``generation`` block sets them
FALLBACK = {"gen_length": 16}


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler knobs for :class:`Captioner` (keyword names of :func:`maskzoo.core.generate`; ``None`` = the
    checkpoint's ``generation`` block, then the core's defaults)."""

    steps: int | None = None
    gen_length: int | None = None
    block_length: int | None = None
    temperature: float | None = None
    remasking: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def generation_block(model: VisionLanguageModel) -> dict[str, Any]:
    """The checkpoint's validated ``generation`` block (older vision checkpoints call it ``sampler``)."""
    extra = getattr(model, "checkpoint_extra", None) or {}
    return validate_generation_block(extra.get("generation", extra.get("sampler")), "config.json")


class Captioner:
    """Caption PIL images or image paths with a :class:`VisionLanguageModel` and its tokenizer.

    Sampling settings: the call's keyword arguments > ``settings`` > the checkpoint's ``generation`` block >
    :data:`FALLBACK` > the core's (greedy low-confidence, one token per step, one block).

    Example::

        cap = Captioner.from_pretrained()              # the embedded scenes captioner
        cap(["a.png", "b.png"])                        # -> ["a small red circle at the top", ...]
        cap.caption(images, steps=6, temperature=0.5)  # sampler settings per call
    """

    def __init__(self, model: VisionLanguageModel, tokenizer: Tokenizer, *, prompt: str | None = None,
                 settings: SamplerSettings | None = None, batch_size: int = 32) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.template = get_template(model.config.template)
        self.prompt = prompt or model.config.prompt
        self.block = {**generation_block(model), **(settings.as_dict() if settings else {})}
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._stop_ids = {tokenizer.eos_id, *self._end_of_turn_ids()}

    def generation(self, **overrides) -> dict[str, Any]:
        """The keyword arguments for :func:`maskzoo.core.generate` after ``overrides`` (checked together)."""
        return resolve_generation(overrides, self.block, FALLBACK)

    @classmethod
    def from_pretrained(cls, path_or_name: str | os.PathLike | None = None, *, device: str = "cpu",
                        dtype: torch.dtype | None = None, **kwargs) -> Captioner:
        """Load a vision checkpoint dir, a LLaDA-V dir, or a zoo name (None: the embedded default); ``dtype``
        (e.g. ``torch.bfloat16`` on a GPU) casts the weights, image features follow the model's dtype."""
        from maskzoo.vision.checkpoint import load_vision_model

        model, tok = load_vision_model(path_or_name, device=device, dtype=dtype)
        return cls(model, tok, **kwargs)

    def _end_of_turn_ids(self) -> list[int]:
        ids = self.tok.encode(self.template.end_of_turn)
        return ids[:1]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(self, images: Sequence[ImageLike], **kwargs) -> list[str]:
        return self.caption(images, **kwargs)

    @torch.no_grad()
    def caption(self, images: Sequence[ImageLike], *, prompt: str | None = None, batch_size: int | None = None,
                generator: torch.Generator | None = None, progress: bool = False, **settings) -> list[str]:
        """One caption per image. ``settings`` (keyword arguments of :func:`maskzoo.core.generate`: ``steps``,
        ``gen_length``, ``block_length``, ``temperature``, ``remasking``, ``top_k``, ...) apply to this call."""
        s = self.generation(**settings)
        prompt = self.prompt if prompt is None else prompt
        check_prompt(prompt, 1)
        bs = batch_size or self.batch_size
        out: list[str] = []
        bar = progress_bar(total=len(images), desc="captioning", unit="img", quiet=None if progress else True)
        for start in range(0, len(images), bs):
            chunk = [_as_image(im) for im in images[start:start + bs]]
            out += self._caption_batch(chunk, prompt, s, generator)
            bar.update(len(chunk))
        bar.close()
        return out

    def _encode(self, images: list[Image.Image]) -> list[tuple[list[int], torch.Tensor]]:
        """Image features grouped by length: ``[(indices into images, features [b, T, D])]``. One group of
        ``tokens_per_image`` without tiling; with anyres tiling, one group per distinct token count."""
        if self.model.anyres is None:
            pixels = self.model.tower.preprocess(images).to(self.device)  # [B, 3, H, W]
            return [(list(range(len(images))), self.model.encode_images(pixels))]  # [B, T, D]
        groups: dict[int, list[tuple[int, torch.Tensor]]] = {}
        for i, im in enumerate(images):
            f = self.model.encode_image_tiled(im)  # [N_i, D]
            groups.setdefault(f.shape[0], []).append((i, f))
        return [([i for i, _ in g], torch.stack([f for _, f in g])) for g in groups.values()]

    def _caption_batch(self, images: list[Image.Image], prompt: str, s: dict[str, Any],
                       generator: torch.Generator | None) -> list[str]:
        out: list[str] = [""] * len(images)
        for rows, feats in self._encode(images):
            ids = encode_prompt(self.tok, self.template, prompt, feats.shape[1])
            prompt_ids = torch.tensor(ids, dtype=torch.long, device=self.device)  # [P]
            batch = prompt_ids[None].expand(len(rows), -1)  # [b, P]
            x = self._generate(feats, batch, s, generator)  # [b, P+G]
            for i, row in zip(rows, x):
                out[i] = self.decode(row[prompt_ids.numel():])
        return out

    def _generate(self, feats: torch.Tensor, batch: torch.Tensor, s: dict[str, Any],
                  generator: torch.Generator | None) -> torch.Tensor:
        """The core sampler on prompts ``batch`` [b, P] whose placeholders take ``feats`` [b, T, D]."""
        return generate(self.model.denoiser(feats), batch, **s, mask_id=self.model.mask_id, eos_id=self.tok.eos_id,
                        generator=generator, suppress_tokens=self.model.config.suppress_tokens or None,
                        stop_tokens=self._stop_tokens(s))  # [b, P+G]

    def _stop_tokens(self, s: dict[str, Any]) -> list[int] | None:
        """The checkpoint's stop tokens where the sampler supports them (confidence remasking, fixed counts)."""
        stops = self.model.config.stop_tokens
        fixed = s.get("threshold") is None and s.get("factor") is None
        return stops if stops and fixed and s.get("remasking", "low_confidence") in CONFIDENCE_RULES else None

    @torch.no_grad()
    def ask(self, images: Sequence[ImageLike], prompt: str, *, video: bool = False, system: str | None = None,
            generator: torch.Generator | None = None, **settings: Any) -> str:
        """One answer to ``prompt`` about several images (one ``<image>`` each, in order) or, with ``video=True``,
        about the frames of one video (one ``<image>`` for all frames; LLaDA-V pools each frame's features 2x2).
        ``system`` replaces the template's system message."""
        s = self.generation(**settings)
        frames = [_as_image(im) for im in images]
        check_prompt(prompt, 1 if video else len(frames))
        if video:
            feats = [self.model.encode_video(frames)]  # [[F t'^2 (+1), D]]
        elif self.model.anyres is None:
            pixels = self.model.tower.preprocess(frames).to(self.device)  # [n, 3, H, W]
            feats = list(self.model.encode_images(pixels))  # n x [T, D]
        else:
            feats = [self.model.encode_image_tiled(im) for im in frames]  # n x [N_i, D]
        ids = encode_prompt(self.tok, self.template, prompt, [f.shape[0] for f in feats], system=system)
        prompt_ids = torch.tensor(ids, dtype=torch.long, device=self.device)[None]  # [1, P]
        x = self._generate(torch.cat(feats)[None], prompt_ids, s, generator)  # [1, P+G]
        return self.decode(x[0, prompt_ids.shape[1]:])

    def decode(self, generated: torch.Tensor | list[int]) -> str:
        """Generated ids -> text up to the first stop token (mask tokens, if any, are dropped)."""
        ids = generated.tolist() if isinstance(generated, torch.Tensor) else list(generated)
        cut = next((k for k, i in enumerate(ids) if i in self._stop_ids), len(ids))
        return self.tok.decode([i for i in ids[:cut] if i != self.model.mask_id]).strip()


_CACHED: dict[tuple[str, str], Captioner] = {}


def caption(images: ImageLike | Sequence[ImageLike], checkpoint: str | os.PathLike | None = None, *,
            prompt: str | None = None, device: str = "cpu", seed: int | None = None,
            **settings: Any) -> str | list[str]:
    """One call: the caption of one image (a path or a PIL image), or the list of captions of several, with the
    embedded captioner or ``checkpoint`` (a vision dir, a LLaDA-V dir or a zoo name; loaded once per process).
    ``settings`` are sampler keyword arguments (``steps``, ``temperature``, ...); ``seed`` makes sampling with a
    temperature repeatable."""
    key = (str(checkpoint), str(device))
    if key not in _CACHED:
        _CACHED[key] = Captioner.from_pretrained(checkpoint, device=device)
    cap = _CACHED[key]
    single = isinstance(images, (str, os.PathLike, Image.Image))
    batch = [images] if single else list(images)  # type: ignore[list-item]
    gen = None if seed is None else torch.Generator(device=cap.device).manual_seed(seed)
    out = cap.caption(batch, prompt=prompt, generator=gen, **settings)
    return out[0] if single else out


def _as_image(im: ImageLike) -> Image.Image:
    if isinstance(im, Image.Image):
        return to_rgb(im)
    return open_image(im)


def expand_paths(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Image paths from files and folders (a folder contributes its image files, sorted)."""
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in exts and q.is_file())
            if not found:
                raise UserError(f"{p}: folder holds no image files")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise UserError(f"image not found: {p}")
    return out
