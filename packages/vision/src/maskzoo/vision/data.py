"""Training data: captioned image folders, LLaVA conversation JSON, procedural scenes; and the collator.

Every source is a map-style dataset of :class:`Example` (images + conversation turns), so the core's
:class:`~maskzoo.core.training.ResumableLoader` batches it resumably. Formats:

* captions JSONL — one ``{"image": "relative/or/absolute.png", "caption": "..."}`` per line; the prompt is
  the recipe's ``prompt`` (must contain ``<image>``).
* LLaVA JSON — a list of ``{"image": str | [str, ...], "conversations": [{"from": "human", "value":
  "<image>\\n..."}, {"from": "gpt", "value": "..."}, ...]}`` (LLaVA-1.5 / LLaDA-V data format); a record
  without ``image`` is text-only.
* scenes — :class:`~maskzoo.vision.scenes.SceneGenerator` items, generated on the fly (index -> example).

The collator turns examples into ``input_ids [B, L]``, ``maskable [B, L]`` (response tokens + EOS padding,
LLaDA SFT) and ``pixel_values [N, 3, H, W]`` with the N images in placeholder order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from maskzoo.core.errors import UserError
from maskzoo.vision.images import load_image
from maskzoo.vision.scenes import SceneGenerator
from maskzoo.vision.template import ChatTemplate, encode_conversation, pad_batch
from maskzoo.vision.tokenizer import IMAGE_TOKEN, Tokenizer


def open_image(path: str | Path) -> Image.Image:
    """Read an image fully as RGB (:func:`maskzoo.vision.images.load_image`: EXIF orientation, 16-bit scaling,
    transparency over white, first frame of an animation); a bad file is a :class:`UserError`."""
    return load_image(path)


@dataclass
class Example:
    """One training example: images (PIL or paths, in placeholder order) and conversation turns."""

    images: list
    turns: list[tuple[str, str]]


def check_prompt(prompt: str, n_images: int) -> None:
    """A prompt must hold exactly one ``<image>`` per image."""
    k = prompt.count(IMAGE_TOKEN)
    if n_images and k == 0:
        raise UserError(f"the prompt {prompt!r} has no {IMAGE_TOKEN} placeholder but an image was given")
    if k != n_images:
        raise UserError(f"the prompt has {k} {IMAGE_TOKEN} placeholder(s) but {n_images} image(s) were given")


class CaptionJsonl(torch.utils.data.Dataset):
    """``{"image", "caption"}`` lines; images resolved against ``image_folder`` (default: the file's folder)."""

    def __init__(self, path: str | Path, prompt: str, image_folder: str | Path | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"caption file not found: {path}")
        check_prompt(prompt, 1)
        self.root = Path(image_folder) if image_folder else path.parent
        self.prompt = prompt
        self.rows: list[tuple[str, str]] = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.rows.append((str(rec["image"]), str(rec["caption"])))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}:{n}: expected a JSON object with 'image' and 'caption'") from None
        if not self.rows:
            raise UserError(f"{path}: no captions")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Example:
        image, caption = self.rows[i]
        return Example([self.root / image], [("user", self.prompt), ("assistant", caption)])


class LlavaConversations(torch.utils.data.Dataset):
    """LLaVA-style conversation JSON (a list of records with ``conversations`` and optional ``image``)."""

    def __init__(self, path: str | Path, image_folder: str | Path | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"conversation file not found: {path}")
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(records, list) or not records:
            raise UserError(f"{path}: expected a non-empty JSON list of conversation records")
        self.root = Path(image_folder) if image_folder else path.parent
        self.records = []
        for k, rec in enumerate(records):
            if not isinstance(rec, dict) or not isinstance(rec.get("conversations"), list):
                raise UserError(f"{path}: record {k} has no 'conversations' list")
            images = rec.get("image") or []
            images = [images] if isinstance(images, str) else list(images)
            text = "".join(str(t.get("value", "")) for t in rec["conversations"] if isinstance(t, dict))
            if text.count(IMAGE_TOKEN) != len(images):
                raise UserError(f"{path}: record {k} has {text.count(IMAGE_TOKEN)} <image> placeholder(s) "
                                f"but {len(images)} image(s)")
            self.records.append((images, rec["conversations"]))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Example:
        images, conv = self.records[i]
        return Example([self.root / p for p in images], conv)


class SceneDataset(torch.utils.data.Dataset):
    """``size`` procedural scenes of one split (item ``i`` is a pure function of ``(split, seed, i)``)."""

    def __init__(self, split: str, size: int, prompt: str, *, seed: int = 0, image_size: int = 48,
                 p_uncoloured: float = 0.0) -> None:
        check_prompt(prompt, 1)
        self.gen = SceneGenerator(split=split, image_size=image_size, p_uncoloured=p_uncoloured)
        self.size, self.seed, self.prompt = size, seed, prompt

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Example:
        image, caption = self.gen.item(i, self.seed)
        return Example([image], [("user", self.prompt), ("assistant", caption)])


class Collator:
    """Examples -> ``{"input_ids", "maskable", "pixel_values"}`` for :class:`VisionLanguageModel`."""

    def __init__(self, tokenizer: Tokenizer, template: ChatTemplate, preprocess: Callable[[list], torch.Tensor],
                 tokens_per_image: int, seq_len: int = 0) -> None:
        self.tok, self.template, self.preprocess = tokenizer, template, preprocess
        self.tokens_per_image, self.seq_len = tokens_per_image, seq_len

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        rows, images = [], []
        for ex in examples:
            rows.append(encode_conversation(self.tok, self.template, ex.turns, self.tokens_per_image))
            images += [im if isinstance(im, Image.Image) else open_image(im) for im in ex.images]
        ids, maskable = pad_batch(rows, self.tok.eos_id, self.seq_len or None)  # [B, L] each
        batch = {"input_ids": ids, "maskable": maskable}
        if images:
            batch["pixel_values"] = self.preprocess(images)  # [N, 3, H, W]
        return batch
