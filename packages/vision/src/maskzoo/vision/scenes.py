"""Procedural captioned scenes with a held-out compositional split.

Real captioned photographs are not available offline, so captioners are trained and measured on scenes drawn
from a small grammar. A scene is a set of objects on a 3x3 grid; every object has a *shape*, a *colour*, a
*size* and a *cell*. Objects of the same (shape, colour, size) form a *group*; the caption is a deterministic
function of the scene:

    single object  ->  "a {size} {colour} {shape} at the {position}"
    several        ->  "{count} {size} {colour} {shape}[s] and {count} ..."     (groups in grammar order)

Compositional split (in the spirit of CLEVR-CoGenT, Johnson et al. 2017, and the systematicity tests of
Lake & Baroni 2018): a fixed set ``H`` of colour-shape pairs never occurs in the ``train`` split; every
``heldout`` scene contains at least one pair from ``H``. With colours C and shapes S, ``H`` covers each colour
exactly once, so every colour and every shape is still seen in training; only their combination is new.

Scenes are pure functions of ``(split, seed, index)``, so a dataset is reproducible and resumable by index.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from maskzoo.core.errors import UserError

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 45, 45),
    "green": (45, 185, 70),
    "blue": (55, 95, 235),
    "yellow": (235, 215, 50),
    "purple": (155, 65, 205),
    "white": (240, 240, 240),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
PLURALS: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles",
                           "diamond": "diamonds", "cross": "crosses"}
SIZES: dict[str, float] = {"small": 0.24, "large": 0.44}  # radius as a fraction of the cell side
COUNT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four")
ROWS: tuple[str, ...] = ("top", "", "bottom")
COLS: tuple[str, ...] = ("left", "", "right")
GRID = 3

#: colour-shape pairs absent from the training split (each colour once; triangle twice, nothing else repeats).
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset({
    ("red", "circle"), ("green", "square"), ("blue", "triangle"),
    ("yellow", "diamond"), ("purple", "cross"), ("white", "triangle"),
})

SPLITS = ("train", "heldout", "all")


def position_name(row: int, col: int) -> str:
    """Cell (row, col) of the 3x3 grid -> 'top left', 'top', 'left', 'center', ..."""
    words = [w for w in (ROWS[row], COLS[col]) if w]
    return " ".join(words) if words else "center"


UNCOLOURED = "none"  # colour of an object drawn in a random off-palette colour; its caption names no colour


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    row: int
    col: int
    rgb: tuple[int, int, int] | None = None  # set for UNCOLOURED objects


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    @property
    def caption(self) -> str:
        return caption_of(self)

    def pairs(self) -> set[tuple[str, str]]:
        return {(o.colour, o.shape) for o in self.objects}


def _group_key(o: SceneObject) -> tuple[int, int, int]:
    colour = -1 if o.colour == UNCOLOURED else list(COLOURS).index(o.colour)
    return (SHAPES.index(o.shape), colour, list(SIZES).index(o.size))


def _noun_phrase(o: SceneObject, noun: str) -> str:
    return f"{o.size} {noun}" if o.colour == UNCOLOURED else f"{o.size} {o.colour} {noun}"


def caption_of(scene: Scene) -> str:
    """The grammar: one caption per scene, groups listed in (shape, colour, size) order."""
    objs = scene.objects
    if len(objs) == 1:
        o = objs[0]
        return f"a {_noun_phrase(o, o.shape)} at the {position_name(o.row, o.col)}"
    groups: dict[tuple[int, int, int], list[SceneObject]] = {}
    for o in objs:
        groups.setdefault(_group_key(o), []).append(o)
    parts = []
    for key in sorted(groups):
        g = groups[key]
        o = g[0]
        noun = o.shape if len(g) == 1 else PLURALS[o.shape]
        parts.append(f"{COUNT_WORDS[len(g)]} {_noun_phrase(o, noun)}")
    return " and ".join(parts)


def caption_vocabulary() -> list[str]:
    """Every word the grammar can produce (the built-in tokenizer's caption words)."""
    words = ["a", "at", "the", "and", "center", *ROWS, *COLS, *COUNT_WORDS[1:], *SIZES, *COLOURS, *SHAPES,
             *PLURALS.values()]
    return list(dict.fromkeys(w for w in words if w))


@dataclass
class SceneGenerator:
    """Samples scenes of one split and renders them.

    ``split``: "train" (no held-out pair anywhere), "heldout" (at least one held-out pair per scene) or "all".
    ``p_single``: probability of a one-object scene; otherwise 1-2 groups with up to ``max_objects`` objects.
    ``p_uncoloured`` (train split only): probability that a scene's objects are drawn in random colours far
    from every palette colour, captioned without colour words ("a small circle at the top") — shapes seen in
    many colours, while no held-out pair (nor anything near it) is ever shown.
    """

    split: str = "train"
    image_size: int = 48
    p_single: float = 0.4
    max_objects: int = 4
    held_out: frozenset[tuple[str, str]] = field(default_factory=lambda: HELD_OUT_PAIRS)
    supersample: int = 2
    p_uncoloured: float = 0.0

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise UserError(f"unknown scene split {self.split!r}; choose one of {', '.join(SPLITS)}")
        if not 2 <= self.max_objects <= GRID * GRID:
            raise UserError(f"max_objects must be in 2..{GRID * GRID}, got {self.max_objects}")
        all_pairs = [(c, s) for c in COLOURS for s in SHAPES]
        self.seen_pairs = [p for p in all_pairs if p not in self.held_out]
        self.unseen_pairs = [p for p in all_pairs if p in self.held_out]
        self.all_pairs = all_pairs

    # ---------------------------------------------------------------- sampling
    def _pair_pool(self) -> list[tuple[str, str]]:
        return self.seen_pairs if self.split == "train" else self.all_pairs

    def sample(self, rng: random.Random) -> Scene:
        """One scene; the split's constraint holds by construction."""
        sizes = list(SIZES)
        if rng.random() < self.p_single:
            counts = [1]
        elif rng.random() < 1 / 3:
            counts = [rng.randint(2, min(3, self.max_objects))]
        else:
            a = rng.randint(1, self.max_objects - 1)
            counts = [a, rng.randint(1, min(3, self.max_objects - a))]
        if self.split == "train" and self.p_uncoloured and rng.random() < self.p_uncoloured:
            return self._uncoloured(rng, counts)
        pool = self._pair_pool()
        pairs: list[tuple[str, str]] = []
        for i in range(len(counts)):
            if self.split == "heldout" and i == 0:
                choice = rng.choice(self.unseen_pairs)
            else:
                choice = rng.choice([p for p in pool if p not in pairs])
            pairs.append(choice)
        cells = rng.sample(range(GRID * GRID), sum(counts))
        objs = []
        for (colour, shape), n in zip(pairs, counts):
            size = rng.choice(sizes)
            for _ in range(n):
                cell = cells.pop()
                objs.append(SceneObject(shape, colour, size, cell // GRID, cell % GRID))
        rng.shuffle(objs)
        return Scene(tuple(objs))

    def _uncoloured(self, rng: random.Random, counts: list[int]) -> Scene:
        shapes = rng.sample(SHAPES, len(counts))
        cells = rng.sample(range(GRID * GRID), sum(counts))
        objs = []
        for shape, n in zip(shapes, counts):
            size, rgb = rng.choice(list(SIZES)), off_palette_colour(rng)
            objs += [SceneObject(shape, UNCOLOURED, size, c // GRID, c % GRID, rgb) for c in cells[:n]]
            cells = cells[n:]
        rng.shuffle(objs)
        return Scene(tuple(objs))

    def scene(self, index: int, seed: int = 0) -> Scene:
        return self.sample(self._rng(index, seed))

    def item(self, index: int, seed: int = 0) -> tuple[Image.Image, str]:
        """(image, caption) number ``index`` of this split for ``seed``: a pure function of its arguments."""
        rng = self._rng(index, seed)
        scene = self.sample(rng)
        return self.render(scene, rng), scene.caption

    def _rng(self, index: int, seed: int) -> random.Random:
        return random.Random(f"{self.split}/{seed}/{index}")

    # ---------------------------------------------------------------- rendering
    def render(self, scene: Scene, rng: random.Random | None = None) -> Image.Image:
        """Draw at ``supersample`` x resolution and downsample (antialiasing); colours jitter by +-12."""
        rng = rng or random.Random(0)
        s = self.image_size * self.supersample
        cell = s / GRID
        bg = tuple(rng.randint(25, 60) for _ in range(3))
        img = Image.new("RGB", (s, s), bg)
        draw = ImageDraw.Draw(img)
        for o in scene.objects:
            r = SIZES[o.size] * cell
            slack = cell / 2 - r - 1
            cx = (o.col + 0.5) * cell + rng.uniform(-0.5, 0.5) * slack
            cy = (o.row + 0.5) * cell + rng.uniform(-0.5, 0.5) * slack
            base = o.rgb if o.rgb is not None else COLOURS[o.colour]
            colour = tuple(min(255, max(0, c + rng.randint(-12, 12))) for c in base)
            _DRAW[o.shape](draw, cx, cy, r, colour)
        return img.resize((self.image_size, self.image_size), Image.Resampling.LANCZOS)


def rgb_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance of two RGB colours (0-255 per channel)."""
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def off_palette_colour(rng: random.Random, min_distance: float = 120.0) -> tuple[int, int, int]:
    """A random visible colour at least ``min_distance`` (RGB Euclidean) from every palette colour."""
    while True:
        c = (rng.randint(40, 255), rng.randint(40, 255), rng.randint(40, 255))
        if max(c) > 110 and all(rgb_distance(c, p) >= min_distance for p in COLOURS.values()):
            return c


def _circle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, c) -> None:
    d.ellipse([x - r, y - r, x + r, y + r], fill=c)


def _square(d: ImageDraw.ImageDraw, x: float, y: float, r: float, c) -> None:
    h = r * 0.85
    d.rectangle([x - h, y - h, x + h, y + h], fill=c)


def _triangle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, c) -> None:
    d.polygon([(x, y - r), (x + r * 0.95, y + r * 0.75), (x - r * 0.95, y + r * 0.75)], fill=c)


def _diamond(d: ImageDraw.ImageDraw, x: float, y: float, r: float, c) -> None:
    d.polygon([(x, y - r), (x + r * 0.8, y), (x, y + r), (x - r * 0.8, y)], fill=c)


def _cross(d: ImageDraw.ImageDraw, x: float, y: float, r: float, c) -> None:
    w = r * 0.33
    d.rectangle([x - r, y - w, x + r, y + w], fill=c)
    d.rectangle([x - w, y - r, x + w, y + r], fill=c)


_DRAW = {"circle": _circle, "square": _square, "triangle": _triangle, "diamond": _diamond, "cross": _cross}


def write_scene_folder(out_dir, n: int, *, split: str = "train", seed: int = 0, image_size: int = 48) -> None:
    """Write ``n`` scenes as PNG files plus ``captions.jsonl`` ({"image": ..., "caption": ...}), atomically."""
    import json
    from pathlib import Path

    from maskzoo.core.fileio import atomic_dir

    gen = SceneGenerator(split=split, image_size=image_size)
    with atomic_dir(Path(out_dir)) as tmp:
        with open(tmp / "captions.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                img, cap = gen.item(i, seed)
                name = f"scene_{i:06d}.png"
                img.save(tmp / name)
                f.write(json.dumps({"image": name, "caption": cap}) + "\n")
