"""EOS-aware stopping and trimming.

A row is finished once a decoded EOS token sits in its generated part. Checked after each semi-autoregressive
block (all positions before the block's end are decoded by then), generation stops early when every row is
finished. Everything after a row's first generated EOS is then set to ``fill_id`` (``pad_id`` when given, else EOS,
matching LLaDA's SFT data where answers are padded with EOS), so stopped and unstopped runs return the same shape
[B, P + gen_length] and no mask tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rows_finished(x: Tensor, prompt_len: int, end: int, eos_id: int) -> Tensor:
    """[B] bool: the row has an EOS among its decoded generated positions ``[prompt_len, end)``."""
    return (x[:, prompt_len:end] == eos_id).any(dim=1)  # [B]


def trim_after_eos(x: Tensor, prompt_len: int, eos_id: int, fill_id: int) -> Tensor:
    """Set every generated position after the first generated EOS of each row to ``fill_id``; x [B, L] in place."""
    gen = x[:, prompt_len:]  # [B, G] view
    seen = (gen == eos_id).to(torch.int64).cumsum(dim=1)  # [B, G] EOS count up to and including each position
    after = (seen - (gen == eos_id).to(torch.int64)) > 0  # [B, G] strictly after the first EOS
    gen.masked_fill_(after, fill_id)
    return x
