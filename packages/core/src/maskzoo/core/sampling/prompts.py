"""A batch of prompts of different lengths: left padding plus an attention mask.

Prompts are left-padded so that every row's generated positions share the same columns. The model gets
``attention_mask`` [B, L] (1 = real token) and must ignore padded keys and derive position ids from the mask
(``cumsum - 1``), so a padded row gives exactly what it gives alone. Right padding would put padding between the
prompt and the generation and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

PromptInput = Tensor | Sequence[Tensor] | Sequence[Sequence[int]]


def _as_rows(prompt_ids: PromptInput) -> list[Tensor] | Tensor:
    """A 2-D tensor stays as is; a 1-D tensor becomes one row; a sequence becomes a list of 1-D tensors."""
    if isinstance(prompt_ids, Tensor):
        if prompt_ids.dim() == 1:
            return prompt_ids.unsqueeze(0)  # [1, P]
        if prompt_ids.dim() != 2:
            raise UserError(
                f"prompt_ids must be [batch, length] or [length]; got shape {tuple(prompt_ids.shape)}"
            )
        return prompt_ids
    rows = [torch.as_tensor(row, dtype=torch.long) for row in prompt_ids]
    if not rows:
        raise UserError("prompt_ids is an empty list; give at least one prompt")
    for row in rows:
        if row.dim() != 1:
            raise UserError(f"each prompt in a list must be 1-D; got shape {tuple(row.shape)}")
    return rows


def left_padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    """[B, P] -> [B, P] int64 attention mask: 0 on the leading run of ``pad_id`` of each row, 1 after it."""
    return ((ids != pad_id).to(torch.int64).cumsum(dim=1) > 0).to(torch.int64)  # [B, P]


def batch_prompts(
    prompt_ids: PromptInput,
    pad_id: int | None,
    attention_mask: Tensor | None,
    device: torch.device,
) -> tuple[Tensor, Tensor | None]:
    """Prompts as one left-padded batch.

    Args:
        prompt_ids: [B, P] or [P] LongTensor, or a list of 1-D LongTensors / int lists (lengths may differ).
        pad_id: padding token; required to pad a list of different lengths. For a [B, P] tensor, its leading runs
            of ``pad_id`` are padding.
        attention_mask: optional [B, P] mask for a tensor input (1 = real token), e.g. from a tokenizer with
            left padding.

    Returns:
        ``(ids [B, P] int64, mask [B, P] int64 or None)``; the mask is None when no row has padding.
    """
    rows = _as_rows(prompt_ids)
    if isinstance(rows, list):
        if attention_mask is not None:
            raise UserError("attention_mask is only accepted with a [batch, length] prompt tensor")
        width = max(len(r) for r in rows)
        if any(len(r) != width for r in rows) and pad_id is None:
            raise UserError("prompts of different lengths need pad_id= to left-pad them")
        fill = pad_id if pad_id is not None else 0
        ids = torch.full((len(rows), width), fill, dtype=torch.long)  # [B, P]
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, P]
        for b, row in enumerate(rows):
            if len(row):
                ids[b, width - len(row) :] = row
                mask[b, width - len(row) :] = 1
    else:
        ids = rows.to(torch.long)
        if attention_mask is not None:
            mask = attention_mask.to(device=ids.device, dtype=torch.long)
            if mask.shape != ids.shape:
                raise UserError(
                    f"attention_mask shape {tuple(mask.shape)} differs from prompt shape {tuple(ids.shape)}"
                )
            if bool((mask[:, 1:] < mask[:, :-1]).any()):
                raise UserError("attention_mask must describe left padding (0s before 1s in every row)")
        elif pad_id is not None:
            mask = left_padding_mask(ids, pad_id)
        else:
            mask = torch.ones_like(ids)
    ids, mask = ids.to(device), mask.to(device)
    return ids, (None if bool(mask.all()) else mask)
