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
from maskzoo.core.kv_cache import KVCache

_CONTEXT_ATTRS = ("max_seq_len", "max_sequence_length", "max_position_embeddings")


class LanguageModelFacts:
    """Mixin for the config of a model that wraps a core language model described by a dict ``lm`` (a
    ``TransformerConfig`` as a dict, e.g. the audio and vision models): the facts the samplers read through
    ``model.config``."""

    lm: dict

    @property
    def mask_token_id(self) -> int:
        return int(self.lm["mask_token_id"])

    @property
    def vocab_size(self) -> int:
        return int(self.lm["vocab_size"])

    @property
    def max_seq_len(self) -> int:
        return int(self.lm.get("max_seq_len", 1024))


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


def accepts_kv_cache(model: Callable) -> bool:
    """Whether the model can hold a key/value cache: it declares ``supports_kv_cache = True`` and its forward takes
    ``kv_cache=``, ``cache_position=`` and ``logits_slice=`` (see :class:`~maskzoo.core.transformer.DiffusionTransformer`).
    """
    if not getattr(model, "supports_kv_cache", False):
        return False
    target = model.forward if isinstance(model, nn.Module) else model
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return all(name in params for name in ("kv_cache", "cache_position", "logits_slice"))


class Denoiser:
    """The model as the samplers see it: logits of some positions of ``x`` [B, L], guidance and suppression included.

    ``denoiser(x)`` runs the whole sequence and returns [B, L, V]. :meth:`logits` runs only the columns
    ``[a, b)`` of ``x`` against a key/value cache (a model that holds one) and returns the columns ``[lo, hi)``.

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
        self.cacheable = accepts_kv_cache(model)
        self.calls = 0  #: model forward calls so far (a guided call counts once)
        self.checked = False

    def _call(self, ids: Tensor, attention_mask: Tensor | None, extra: dict, expect: tuple[int, int]) -> Tensor:
        if attention_mask is not None:
            extra = dict(extra, attention_mask=attention_mask)
        logits = as_logits(self.model(ids, **extra))  # [b, n, V]
        if logits.shape[:2] != expect:
            raise UserError(f"the model returned logits of shape {tuple(logits.shape)} for input {tuple(ids.shape)}")
        if not self.checked:
            if self.mask_id >= logits.shape[-1]:
                raise UserError(
                    f"mask_id {self.mask_id} is outside the model's vocabulary of {logits.shape[-1]} tokens"
                )
            self.checked = True
        return logits

    def __call__(self, x: Tensor) -> Tensor:
        """Logits [B, L, V] for the whole batch ``x`` [B, L] (guided when ``cfg_scale > 0``, suppressed ids -inf)."""
        return self.logits(x, 0, x.shape[1], 0, x.shape[1])

    def logits(
        self,
        x: Tensor,
        a: int,
        b: int,
        lo: int,
        hi: int,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Logits [B, hi - lo, V] of positions ``[lo, hi)`` from a model call on the columns ``[a, b)`` of ``x``.

        With ``cache`` the call writes keys/values of ``[a, b)`` at position ``a`` and attends to every cached key;
        without it ``[a, b)`` must be the whole sequence. The output layer runs on ``[lo, hi)`` only when the model
        takes ``logits_slice``.
        """
        ids = x[:, a:b]  # [B, n]
        extra: dict = {}
        keep = slice(lo - a, hi - a)
        if self.cacheable:
            extra["logits_slice"] = keep
            expect = (x.shape[0], hi - lo)
        else:
            expect = (x.shape[0], b - a)
        if cache is not None:
            extra.update(kv_cache=cache, cache_position=a)
        attn = self.attention_mask
        if self.cfg_scale == 0.0:
            logits = self._call(ids, attn, extra, expect)  # [B, n', V]
        else:
            uncond = ids.masked_fill(self.prompt_positions[:, a:b], self.mask_id)  # [B, n]
            both_attn = None if attn is None else torch.cat([attn, attn], dim=0)  # [2B, L]
            both = self._call(torch.cat([ids, uncond], dim=0), both_attn, extra, (2 * expect[0], expect[1]))
            cond_logits, uncond_logits = torch.chunk(both, 2, dim=0)  # [B, n', V] each
            logits = uncond_logits + (self.cfg_scale + 1.0) * (cond_logits - uncond_logits)  # [B, n', V]
        self.calls += 1
        if not self.cacheable:
            logits = logits[:, keep]  # [B, hi - lo, V]
        if self.suppress is not None:
            logits = logits.index_fill(-1, self.suppress, float("-inf"))  # [B, hi - lo, V] a new tensor
        return logits
