"""How many tokens to reveal per step, and where the semi-autoregressive blocks lie.

LLaDA (Nie et al. 2025, "Large Language Diffusion Models", arXiv 2502.09992) uses a linear schedule, so the expected
number of tokens revealed is the same at every step. Each block of ``block_length`` generated positions gets
``steps_per_block = steps // num_blocks`` steps, and a row with ``n`` masked tokens in the block reveals

    k_i = n // S + (1 if i < n mod S else 0),      i = 0 .. S-1,   S = steps_per_block,

tokens at step ``i``: the remainder goes to the first steps, and ``sum_i k_i = n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def transfer_counts(num_masked: Tensor, steps: int) -> Tensor:
    """Tokens to reveal per step for each row: LLaDA's split of ``num_masked`` over ``steps``.

    Args:
        num_masked: [B] integer count of masked positions per row.
        steps: number of steps the positions are revealed in (> 0).

    Returns:
        [B, steps] int64 with ``out[b].sum() == num_masked[b]``, the first ``num_masked[b] % steps`` entries one larger.
    """
    n = num_masked.to(torch.int64).unsqueeze(1)  # [B, 1]
    base = n // steps  # [B, 1]
    remainder = n % steps  # [B, 1]
    step = torch.arange(steps, device=n.device).unsqueeze(0)  # [1, S]
    return base + (step < remainder).to(torch.int64)  # [B, S]


@dataclass(frozen=True)
class Span:
    """The positions one block works on: ``region_start <= count_start <= start <= end``.

    ``[start, end)`` is the block of generated positions. Candidates for revealing are the masked positions in
    ``[region_start, end)``: every masked position with index < ``end``, as in LLaDA's reference loop (this takes
    in masked prompt positions and any position an earlier block left masked). The number of tokens to reveal is
    the count of masked positions in ``[count_start, end)``: the block, plus the masked prompt positions for the
    first block (infilling).
    """

    region_start: int
    count_start: int
    start: int
    end: int


def block_spans(prompt_len: int, gen_length: int, block_length: int) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` spans of the semi-autoregressive blocks over the generated positions.

    A generation of length 0 still has one empty block at the end of the prompt, so masked prompt positions (infilling
    without generation) are filled.
    """
    if gen_length == 0:
        return [(prompt_len, prompt_len)]
    return [(prompt_len + s, prompt_len + s + block_length) for s in range(0, gen_length, block_length)]
