"""Stage 0: pre-train a vision tower on what is in each cell of a random-colour shape scene.

LLaDA-V (arXiv 2505.16933) never trains its tower from scratch: SigLIP2 was pre-trained on web-scale image-text
pairs, and the adapter stages only align it with the language model. Nothing can be downloaded here, so the
embedded scenes captioner gets its own small pre-trained tower from this module, trained *without captions*:

    scene: 1-4 objects on the 3x3 grid, every object a random shape, size and colour (uniform in the RGB cube)
    f = tower(image)                                      [B, 9, C]    one feature per grid cell
    L = CE(W_shape f, shape or empty)                     6 classes per cell
      + CE(W_size f, size or empty)                       3 classes per cell
      + lambda * || W_rgb f - rgb / 255 ||^2              occupied cells only (colour regression)

Colour is a continuous target drawn independently of shape, so the pre-training task itself never rewards
reading a colour-shape *conjunction*, the failure of towers trained end to end on captions (CLEVR-CoGenT,
Johnson et al. 2017). Strict hold-out: a shape of a held-out pair (``scenes.HELD_OUT_PAIRS``) is never drawn
within ``exclusion`` (Euclidean RGB distance) of that pair's palette colour, so no stage of the captioner's
training, this one included, shows an image of a held-out pair or anything near it.

The export is the pruned backbone's state dict (``.safetensors``), read by ``TowerConfig.weights``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open
from maskzoo.core.training import ResumableLoader, TrainConfig, Trainer
from maskzoo.vision.scenes import (
    COLOURS,
    GRID,
    HELD_OUT_PAIRS,
    SHAPES,
    SIZES,
    UNCOLOURED,
    Scene,
    SceneGenerator,
    SceneObject,
    rgb_distance,
)
from maskzoo.vision.towers import TowerConfig, VisionTower
from maskzoo.vision.train import TowerSpec

COLOUR_LOSS_WEIGHT = 10.0  # RGB in [0, 1]: an MSE of 0.01 (about 25 levels of 255) weighs like a CE of 0.1


@dataclass
class AttributeScenes(torch.utils.data.Dataset):
    """Random-colour shape scenes with per-cell labels; item ``i`` is a pure function of ``(seed, i)``.

    An item is ``(image, shape [9], size [9], rgb [9, 3])``: ``shape`` 0 = empty cell, else 1 + index into
    ``SHAPES``; ``size`` 0 = empty, else 1 + index into ``SIZES``; ``rgb`` in [0, 1] (zero for empty cells).
    """

    size: int = 10_000_000
    image_size: int = 48
    seed: int = 0
    exclusion: float = 80.0
    held_out: frozenset[tuple[str, str]] = field(default_factory=lambda: HELD_OUT_PAIRS)

    def __post_init__(self) -> None:
        self.gen = SceneGenerator("all", self.image_size)

    def __len__(self) -> int:
        return self.size

    def allowed(self, shape: str, rgb: Sequence[int]) -> bool:
        """False when ``shape`` in colour ``rgb`` would come within ``exclusion`` of a held-out pair."""
        return all(s != shape or rgb_distance(rgb, COLOURS[c]) >= self.exclusion for c, s in self.held_out)

    def _object(self, rng: random.Random, cell: int) -> SceneObject:
        while True:  # rejection sampling: visible on the dark background and outside every exclusion ball
            shape = rng.choice(SHAPES)
            rgb = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
            if max(rgb) > 110 and self.allowed(shape, rgb):
                return SceneObject(shape, UNCOLOURED, rng.choice(list(SIZES)), cell // GRID, cell % GRID, rgb)

    def __getitem__(self, i: int) -> tuple[Image.Image, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = random.Random(f"tower/{self.seed}/{i}")
        cells = rng.sample(range(GRID * GRID), rng.randint(1, 4))
        objects = tuple(self._object(rng, c) for c in cells)
        image = self.gen.render(Scene(objects), rng)
        shape = torch.zeros(GRID * GRID, dtype=torch.long)
        size = torch.zeros(GRID * GRID, dtype=torch.long)
        rgb = torch.zeros(GRID * GRID, 3)
        for o in objects:
            k = o.row * GRID + o.col
            shape[k] = 1 + SHAPES.index(o.shape)
            size[k] = 1 + list(SIZES).index(o.size)
            rgb[k] = torch.tensor(o.rgb, dtype=torch.float32) / 255.0
        return image, shape, size, rgb


class AttributeCollator:
    """Items -> ``{"pixel_values" [B,3,H,W], "shape" [B,9], "size" [B,9], "rgb" [B,9,3]}``."""

    def __init__(self, preprocess) -> None:
        self.preprocess = preprocess

    def __call__(self, items):
        images, shape, size, rgb = zip(*items)
        return {"pixel_values": self.preprocess(list(images)), "shape": torch.stack(shape),
                "size": torch.stack(size), "rgb": torch.stack(rgb)}


class TowerWithHeads(nn.Module):
    """A :class:`VisionTower` read per grid cell by three linear heads (shape, size, colour)."""

    def __init__(self, tower: VisionTower) -> None:
        super().__init__()
        if tower.num_tokens != GRID * GRID:
            raise UserError(f"tower pre-training needs one feature per scene cell ({GRID * GRID} tokens); "
                            f"{tower.cfg.name} at layer {tower.cfg.layer} gives {tower.num_tokens}: "
                            "choose tower.layer / tower.image_size for a 3x3 grid")
        self.tower = tower
        c = tower.out_dim
        self.shape_head = nn.Linear(c, 1 + len(SHAPES))
        self.size_head = nn.Linear(c, 1 + len(SIZES))
        self.rgb_head = nn.Linear(c, 3)

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.tower(pixels)  # [B, 9, C]
        return {"shape": self.shape_head(f), "size": self.size_head(f), "rgb": self.rgb_head(f)}


def attribute_loss(model: TowerWithHeads, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """The stage-0 objective (module docstring) and its per-term values."""
    out = model(batch["pixel_values"])
    occupied = batch["shape"] > 0  # [B, 9]
    l_shape = F.cross_entropy(out["shape"].flatten(0, 1), batch["shape"].flatten())
    l_size = F.cross_entropy(out["size"].flatten(0, 1), batch["size"].flatten())
    l_rgb = F.mse_loss(out["rgb"][occupied], batch["rgb"][occupied])
    loss = l_shape + l_size + COLOUR_LOSS_WEIGHT * l_rgb
    return loss, {"shape_ce": l_shape.item(), "size_ce": l_size.item(), "rgb_mse": l_rgb.item(),
                  "num_tokens": out["shape"].shape[0]}  # the log's tokens/s is images/s here


@torch.no_grad()
def heldout_shape_accuracy(model: TowerWithHeads, n: int, image_size: int, seed: int = 1) -> dict[str, float]:
    """Shape-head accuracy on one-object scenes of the held-out pairs in their palette colours (never trained on)
    and of the seen pairs, ``n`` scenes each: does the tower recognise a shape in a colour it never saw it in?"""
    gen = SceneGenerator("all", image_size)
    rng = random.Random(f"tower-eval/{seed}")
    seen = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT_PAIRS]
    result = {}
    was_training = model.training
    model.eval()
    for name, pairs in (("heldout", sorted(HELD_OUT_PAIRS)), ("seen", seen)):
        images, cells, labels = [], [], []
        for _ in range(n):
            colour, shape = rng.choice(pairs)
            cell = rng.randrange(GRID * GRID)
            obj = SceneObject(shape, colour, rng.choice(list(SIZES)), cell // GRID, cell % GRID)
            images.append(gen.render(Scene((obj,)), rng))
            cells.append(cell)
            labels.append(1 + SHAPES.index(shape))
        logits = model(model.tower.preprocess(images))["shape"]  # [n, 9, 6]
        pred = logits[torch.arange(n), torch.tensor(cells)].argmax(-1)
        result[f"{name}_shape_acc"] = (pred == torch.tensor(labels)).float().mean().item()
    model.train(was_training)
    return result


# ------------------------------------------------------------------------------------------------ recipe
@dataclass
class TowerPretrainRecipe:
    tower: TowerSpec = field(default_factory=lambda: TowerSpec(layer=3, image_size=48, preprocess={"crop_pct": 1.0}))
    """the backbone to pre-train (``weights``: start from a local file instead of random init)"""
    batch_size: int = 128
    exclusion: float = 80.0
    """no shape of a held-out pair within this RGB distance of the pair's colour"""
    eval_scenes: int = 300
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/vision_tower"
    export: str | None = None
    """the tower weights file written at the end (default: run_dir/tower.safetensors)"""


def save_tower_weights(tower: VisionTower, path: str | Path) -> Path:
    """The tower backbone's state dict as ``.safetensors``, written atomically."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"tower weights are written as .safetensors, not {path.name}")
    blob = save({k: v.detach().contiguous().cpu() for k, v in tower.backbone.state_dict().items()},
                metadata={"format": "pt", "tower": tower.cfg.name, "layer": str(tower.cfg.layer)})
    with atomic_open(path, "wb", encoding=None) as f:
        f.write(blob)
    return path


def pretrain_tower_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *,
                               resume: bool = True) -> Path:
    """Run a stage-0 recipe; returns the exported tower weights file."""
    recipe = load_config(TowerPretrainRecipe, config_path, list(overrides))
    if recipe.batch_size < 1:
        raise UserError("batch_size must be >= 1")
    torch.manual_seed(recipe.train.seed)
    t = recipe.tower
    tower = VisionTower(TowerConfig(name=t.name, layer=t.layer, image_size=t.image_size, weights=t.weights,
                                    kwargs=dict(t.kwargs or {}), preprocess=dict(t.preprocess or {})))
    model = TowerWithHeads(tower)
    data = AttributeScenes(image_size=tower.image_size[0], seed=recipe.train.seed, exclusion=recipe.exclusion)
    loader = ResumableLoader(data, recipe.batch_size, AttributeCollator(tower.preprocess), seed=recipe.train.seed,
                             shuffle=False)

    def eval_fn(m: TowerWithHeads) -> dict[str, float]:
        return heldout_shape_accuracy(m, recipe.eval_scenes, tower.image_size[0])

    trainer = Trainer(model, attribute_loss, loader, recipe.train,
                      eval_fn=eval_fn if recipe.eval_scenes > 0 else None, run_dir=Path(recipe.run_dir),
                      resume=resume, run_config=recipe)
    trainer.fit()
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "tower.safetensors"
    if trainer.is_main:
        with trainer.eval_weights() as final:
            save_tower_weights(final.tower, out)
    return out
