"""The real IIIT5K train crops shipped with the package (``data/iiit5k_train.npz``, see ``data/SOURCE.txt``)
and their fixed train / validation split."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

DATA_FILE = Path(str(files("maskzoo.vision.str") / "data" / "iiit5k_train.npz"))
#: crops held out for validation and model selection (a seeded permutation; never trained on)
VAL_SIZE = 300
SPLIT_SEED = 12


@dataclass
class Crops:
    """Grayscale crops of height 32 (uint8 arrays ``[32, w]``) with their labels and file names."""

    images: list[np.ndarray]
    labels: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> Crops:
        return Crops([self.images[i] for i in idx], [self.labels[i] for i in idx], [self.names[i] for i in idx])


def load_iiit5k(path: Path = DATA_FILE) -> Crops:
    """All 2,000 crops, in the file's order."""
    with np.load(path) as z:
        pixels, widths = z["pixels"], z["widths"]
        labels, names = [str(s) for s in z["labels"]], [str(s) for s in z["names"]]
    ends = np.cumsum(widths)
    images = [pixels[:, e - w : e] for e, w in zip(ends, widths)]
    return Crops(images, labels, names)


def split_iiit5k(val_size: int = VAL_SIZE, seed: int = SPLIT_SEED) -> tuple[Crops, Crops]:
    """``(train, val)``: a fixed seeded permutation; the last ``val_size`` crops are the validation split."""
    crops = load_iiit5k()
    order = np.random.default_rng(seed).permutation(len(crops))
    return crops.subset(order[:-val_size]), crops.subset(order[-val_size:])
