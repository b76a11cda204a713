"""tinyshakespeare, shipped with the package (see data/SOURCE.txt), and fixed-length windows over it.

Split as in nanoGPT: the first 90% of characters train, the last 10% validate.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch

from maskzoo.core.errors import UserError

TRAIN_FRACTION = 0.9


def shakespeare_path() -> Path:
    return Path(str(files("maskzoo.core.text") / "data" / "tinyshakespeare.txt"))


def read_text(path: str | Path | None = None) -> str:
    p = Path(path) if path is not None else shakespeare_path()
    if not p.is_file():
        raise UserError(f"text file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p} is not UTF-8 text") from None
    if not text:
        raise UserError(f"{p} is empty")
    return text


def split_text(text: str, train_fraction: float = TRAIN_FRACTION) -> tuple[str, str]:
    n = int(len(text) * train_fraction)
    return text[:n], text[n:]


class TextWindows(torch.utils.data.Dataset):
    """Windows ``ids[i*stride : i*stride + seq_len]`` of one long token stream (map-style, deterministic)."""

    def __init__(self, ids: torch.Tensor, seq_len: int, stride: int | None = None) -> None:
        if ids.numel() < seq_len:
            raise UserError(f"text of {ids.numel()} tokens is shorter than seq_len={seq_len}")
        self.ids = ids
        self.seq_len = seq_len
        self.stride = stride or seq_len
        self.n = (ids.numel() - seq_len) // self.stride + 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        start = i * self.stride
        return {"input_ids": self.ids[start : start + self.seq_len]}  # [seq_len]
