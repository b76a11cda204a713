"""The model as the samplers see it: ids [B, L] -> logits [B, L, V], with padding and classifier-free guidance.

``model`` may be any callable returning logits or an object with ``.logits`` (Hugging Face style). Model facts are
read from duck-typed attributes: ``mask_id`` / ``config.mask_token_id``, ``config.vocab_size``, and the context length
``max_seq_len`` / ``config.max_seq_len`` / ``config.max_sequence_length`` / ``config.max_position_embeddings``.

Classifier-free guidance as in LLaDA (Nie et al. 2025, App. B.3; Ho & Salimans 2022): the unconditional input is
the sequence with every prompt position replaced by the mask token, both go through the model in one batch, and

    l = l_uncond + (w + 1) (l_cond - l_uncond).

Suppressed tokens (``suppress_tokens``, as LLaDA-V's ``generate_with_embeds`` forbids end-of-text and the chat-turn
ids) get ``-inf`` logits after guidance, before any token is drawn or scored. LLaDA-V sets them at the masked
positions only; samplers only ever draw at masked positions, so setting them everywhere gives the same tokens.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor, nn

from maskzoo.core.errors import UserError

_CONTEXT_ATTRS = ("max_seq_len", "max_sequence_length", "max_position_embeddings")


def _attr(model: object, *names: str) -> object | None:
    """First non-None attribute among ``model.<name>`` and ``model.config.<name>``."""
    config = getattr(model, "config", None)
    for owner in (model, config):
        for name in names:
            value = getattr(owner, name, None) if owner is not None else None
            if value is not None and not callable(value):
                return value
    return None


def resolve_mask_id(model: object, mask_id: int | None) -> int:
    """``mask_id`` if given, else the model's (``model.mask_id`` or ``model.config.mask_token_id``)."""
    if mask_id is None:
        mask_id = _attr(model, "mask_id", "mask_token_id")  # type: ignore[assignment]
    if mask_id is None:
        raise UserError(
            "mask_id is not given and the model has no mask_id or config.mask_token_id; pass mask_id="
        )
    mask_id = int(mask_id)
    vocab = vocab_size(model)
    if mask_id < 0 or (vocab is not None and mask_id >= vocab):
        raise UserError(f"mask_id {mask_id} is outside the model's vocabulary of {vocab} tokens")
    return mask_id


def vocab_size(model: object) -> int | None:
    """The model's vocabulary size when it declares one (``vocab_size`` or ``config.vocab_size``)."""
    value = _attr(model, "vocab_size")
    return None if value is None else int(value)  # type: ignore[arg-type]


def context_length(model: object) -> int | None:
    """The longest sequence the model takes, when it declares one."""
    value = _attr(model, *_CONTEXT_ATTRS)
    return None if value is None else int(value)  # type: ignore[arg-type]


def model_device(model: object, fallback: torch.device) -> torch.device:
    """Device of the model's first parameter, else ``fallback`` (plain callables)."""
    if isinstance(model, nn.Module):
        for param in model.parameters():
            return param.device
    return fallback


def accepts_attention_mask(model: Callable) -> bool:
    """Whether calling ``model(ids, attention_mask=...)`` is allowed by its signature."""
    target = model.forward if isinstance(model, nn.Module) else model
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "attention_mask" or p.kind is p.VAR_KEYWORD for p in params)


def as_logits(output: object) -> Tensor:
    """A model's output as a logits tensor (plain tensor or ``.logits``)."""
    logits = getattr(output, "logits", output)
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise UserError(
            f"the model must return logits [batch, length, vocab] (or .logits); it returned {got}"
        )
    return logits


class Denoiser:
    """``denoiser(x [B, L]) -> logits [B, L, V]``: one model call per use, guidance included.

    Args:
        model: the callable.
        attention_mask: [B, L] 1 for real tokens, 0 for left padding; ``None`` when no row is padded.
        prompt_positions: [B, L] bool, True at prompt tokens (replaced by the mask for the unconditional pass).
        mask_id: the mask token.
        cfg_scale: guidance weight ``w``; 0 disables guidance.
        suppress: [S] int64 token ids whose logits are set to ``-inf`` (None: none).
    """

    def __init__(
        self,
        model: Callable,
        attention_mask: Tensor | None,
        prompt_positions: Tensor,
        mask_id: int,
        cfg_scale: float = 0.0,
        suppress: Tensor | None = None,
    ) -> None:
        self.model = model
        self.suppress = suppress
        self.attention_mask = attention_mask
        self.prompt_positions = prompt_positions
        self.mask_id = mask_id
        self.cfg_scale = cfg_scale
        self.checked = False

    def _call(self, ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        out = self.model(ids) if attention_mask is None else self.model(ids, attention_mask=attention_mask)
        logits = as_logits(out)  # [b, L, V]
        if not self.checked:
            if logits.shape[:2] != ids.shape:
                raise UserError(
                    f"the model returned logits of shape {tuple(logits.shape)} for input {tuple(ids.shape)}"
                )
            if self.mask_id >= logits.shape[-1]:
                raise UserError(
                    f"mask_id {self.mask_id} is outside the model's vocabulary of {logits.shape[-1]} tokens"
                )
            self.checked = True
        return logits

    def __call__(self, x: Tensor) -> Tensor:
        """Logits [B, L, V] for the whole batch ``x`` [B, L] (guided when ``cfg_scale > 0``, suppressed ids -inf)."""
        logits = self._guided(x)  # [B, L, V]
        if self.suppress is not None:
            logits = logits.index_fill(-1, self.suppress, float("-inf"))  # [B, L, V] a new tensor
        return logits

    def _guided(self, x: Tensor) -> Tensor:
        if self.cfg_scale == 0.0:
            return self._call(x, self.attention_mask)  # [B, L, V]
        uncond = x.masked_fill(self.prompt_positions, self.mask_id)  # [B, L]
        attn = self.attention_mask
        both_attn = None if attn is None else torch.cat([attn, attn], dim=0)  # [2B, L]
        both = self._call(torch.cat([x, uncond], dim=0), both_attn)  # [2B, L, V]
        cond_logits, uncond_logits = torch.chunk(both, 2, dim=0)  # [B, L, V] each
        return uncond_logits + (self.cfg_scale + 1.0) * (cond_logits - uncond_logits)  # [B, L, V]
