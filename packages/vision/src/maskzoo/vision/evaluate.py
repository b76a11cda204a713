"""Caption quality on procedural scenes: exact match and token accuracy.

For predictions p and references r (word sequences after the tokenizer's normalisation):

    exact match     = mean_k [ p_k == r_k ]
    token accuracy  = sum_k #{i : p_k[i] == r_k[i]} / sum_k max(|p_k|, |r_k|)

Token accuracy is position-wise (a caption shifted by one word scores low), pooled over all words, so an
unfinished or over-long caption is penalised by its length difference.
"""

from __future__ import annotations

import re
import time

import torch

from maskzoo.vision.caption import Captioner
from maskzoo.vision.scenes import SceneGenerator

_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def caption_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """``exact_match`` and ``token_accuracy`` (see module docstring)."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    exact = hits = total = 0
    for p, r in zip(predictions, references):
        pw, rw = words(p), words(r)
        exact += pw == rw
        hits += sum(a == b for a, b in zip(pw, rw))
        total += max(len(pw), len(rw), 1)
    n = max(len(references), 1)
    return {"exact_match": exact / n, "token_accuracy": hits / max(total, 1)}


def scene_set(split: str, n: int, *, seed: int = 1, image_size: int = 48) -> tuple[list, list[str]]:
    """``n`` (image, caption) pairs of a scene split (seed 1 by default: disjoint from training's seed 0)."""
    gen = SceneGenerator(split=split, image_size=image_size)
    items = [gen.item(i, seed) for i in range(n)]
    return [im for im, _ in items], [c for _, c in items]


def evaluate_scenes(captioner: Captioner, split: str = "heldout", n: int = 200, *, seed: int = 1,
                    image_size: int | None = None, batch_size: int = 50, **settings) -> dict[str, float]:
    """Caption ``n`` scenes of ``split`` and score them; adds ``captions_per_s`` (wall clock)."""
    size = image_size or captioner.model.tower.image_size[0]
    images, refs = scene_set(split, n, seed=seed, image_size=size)
    t0 = time.perf_counter()
    preds = captioner.caption(images, batch_size=batch_size, generator=torch.Generator().manual_seed(seed),
                              **settings)
    dt = time.perf_counter() - t0
    return {**caption_metrics(preds, refs), "captions_per_s": n / max(dt, 1e-9)}
