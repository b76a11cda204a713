"""Training batches: synthetic crops mixed with the real IIIT5K train crops, as an endless resumable stream.

Example ``k`` of the stream is a pure function of ``(seed, k)``: with probability ``p_real`` a random real
train crop (lightly augmented with the renderer's torchvision transforms), else a synthetic crop. Batch ``j``
holds examples ``j*B .. (j+1)*B - 1``, so the stream's state is one counter and a resumed run sees exactly
the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import Alphabet
from maskzoo.vision.str.images import to_input
from maskzoo.vision.str.realdata import Crops
from maskzoo.vision.str.render import RenderConfig, SyntheticWords, augment


@dataclass
class DataConfig:
    batch_size: int = 64
    p_real: float = 0.5
    """fraction of real IIIT5K train crops in the stream"""
    p_real_augment: float = 0.6
    """fraction of real crops that are augmented"""
    render: RenderConfig = field(default_factory=RenderConfig)
    real_render: RenderConfig = field(default_factory=lambda: RenderConfig(
        p_curve=0.0, p_rotate=0.3, max_rotate=4.0, p_perspective=0.3, p_blur=0.2, p_lowres=0.2, p_noise=0.2,
        p_jitter=0.5))
    """the (milder) augmentation of real crops"""

    def validate(self) -> None:
        if self.batch_size < 1:
            raise UserError("data.batch_size must be >= 1")
        if not (0 <= self.p_real <= 1 and 0 <= self.p_real_augment <= 1):
            raise UserError("data.p_real and data.p_real_augment must be in [0, 1]")
        self.render.validate()
        self.real_render.validate()


class CropStream:
    """Endless ``{"images": [B, C, 32, 128], "targets": [B, L]}`` batches; ``state_dict`` = batch counter.

    One process (the CPU recipes); under torchrun every rank would draw the same batches."""

    def __init__(self, real: Crops, alphabet: Alphabet, config: DataConfig, *, seed: int = 0, in_chans: int = 1,
                 size: tuple[int, int] = (32, 128)) -> None:
        config.validate()
        if config.p_real > 0 and len(real) == 0:
            raise UserError("data.p_real > 0 but there are no real crops")
        self.real, self.alphabet, self.config = real, alphabet, config
        self.seed, self.in_chans, self.size = seed, in_chans, size
        self.synth = SyntheticWords(seed, config=config.render, max_len=alphabet.max_len) if config.p_real < 1 else None
        self.real_labels = [alphabet.normalize(t) for t in real.labels]
        self.batches = 0

    def example(self, k: int) -> tuple[Tensor, str]:
        rng = np.random.default_rng([self.seed, k, 1])
        cfg = self.config
        if rng.random() < cfg.p_real:
            i = int(rng.integers(len(self.real)))
            im = Image.fromarray(self.real.images[i]).convert("RGB")
            text = self.real_labels[i]
            if rng.random() < cfg.p_real_augment:
                x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)  # [3, H, W]
                fill = tuple(int(v) for v in x[:, :, -1].float().mean(-1))
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(rng.integers(2**62)))
                    x = augment(x, fill, rng, cfg.real_render)
                im = Image.fromarray(x.permute(1, 2, 0).numpy())
        else:
            assert self.synth is not None
            im, text = self.synth[k]
            text = self.alphabet.normalize(text)
        return to_input(im, self.in_chans, *self.size), text

    def batch(self, j: int) -> dict[str, Tensor]:
        b = self.config.batch_size
        pairs = [self.example(k) for k in range(j * b, (j + 1) * b)]
        return {"images": torch.stack([x for x, _ in pairs]),  # [B, C, H, W]
                "targets": self.alphabet.encode_batch([t for _, t in pairs])}  # [B, L]

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return self

    def __next__(self) -> dict[str, Tensor]:
        out = self.batch(self.batches)
        self.batches += 1
        return out

    def state_dict(self) -> dict:
        return {"batches": self.batches, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state["batches"])
