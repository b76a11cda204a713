"""``generate()``: one entry point for every masked-diffusion sampler (re-exported as ``maskzoo.core.sampling.generate``).

The sequence starts as ``[prompt | mask * gen_length]``. Generated positions are split into semi-autoregressive
blocks of ``block_length`` (LLaDA, Nie et al. 2025, Sec. 2.4), decoded left to right, each with
``steps / num_blocks`` steps of the chosen sampler:

==================  ==========================================================================================
``remasking``       sampler
==================  ==========================================================================================
low_confidence      LLaDA: reveal the k_i tokens of highest probability (exactly the reference at T = 0)
margin / entropy    same loop, confidence = top-2 probability margin / negative entropy
random              same loop, uniformly random positions
first_hitting       Zheng et al. 2024: one uniformly random position per step (``steps == gen_length``)
ancestral           MDLM / MD4 ancestral sampling over ``schedule`` with cached p(x0)
dus                 dilated unmasking (Luxembourg et al. 2025): ceil(log2 block) steps, non-adjacent groups
remdm               ReMDM (Wang et al. 2025): ancestral sampling that remasks decoded tokens (cap, eta 0.04)
==================  ==========================================================================================

``remasking`` may also be a sampler object (anything with ``fill_block``, e.g. ``ReMDMSampler(eta=0.1,
strategy="rescale")``): per step it decides how many tokens to reveal and which.

Fast decoding (Fast-dLLM, Wu et al. 2025, arXiv 2505.22618) composes with every sampler: ``cache="prefix"`` or
``"dual"`` reuses keys/values within a block (:mod:`.caches`); ``threshold=`` / ``factor=`` make the number of
tokens per step adaptive (:mod:`.parallel`, with the low_confidence or margin score). With temperature 0,
low_confidence and batch 1 these reproduce Fast-dLLM v1's ``generate``, ``generate_with_prefix_cache`` and
``generate_with_dual_cache`` token for token, with no more forward calls; every row keeps its own counts, so
batches of prompts of different lengths give, row by row, what each prompt gives alone.

Mask tokens inside the prompt are filled too (infilling), as part of the first block; with ``gen_length=0`` only
they are. A prompt without masks gives exactly what LLaDA's reference ``generate()`` gives. The confidence samplers
(low_confidence, margin, entropy, random) keep the reference's behaviour and do not suppress the model's prediction
of the mask token itself (a trained model never makes it; an untrained one may leave such positions masked, exactly
as the reference does); pass ``suppress_tokens=[mask_id]`` to forbid it. The ancestral and first-hitting samplers
never draw the mask token. ``suppress_tokens`` forbids any ids (LLaDA-V forbids end-of-text and chat-turn ids).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Protocol

import torch
from torch import Tensor

from maskzoo.core.errors import UserError

from .ancestral import AncestralSampler
from .caches import CACHES, RegionLogits
from .confidence import CONFIDENCE_RULES
from .counts import Span, block_spans
from .dilated import DilatedSampler
from .draw import TokenDraw
from .first_hitting import FirstHittingSampler
from .model_io import (
    Denoiser,
    accepts_attention_mask,
    accepts_kv_cache,
    context_length,
    model_device,
    resolve_mask_id,
    vocab_size,
)
from .parallel import Factor, ParallelSampler, Threshold, float64_probability
from .prompts import PromptInput, batch_prompts
from .remasking import ConfidenceSampler
from .remdm import ReMDMSampler
from .stop_tokens import StopConfidenceSampler
from .stopping import rows_finished, trim_after_eos


class Sampler(Protocol):
    """Decodes the masked positions of one block in place: per step it decides how many tokens and which."""

    def fill_block(
        self, x: Tensor, logits_fn: RegionLogits, draw: TokenDraw, span: Span, steps: int, mask_id: int
    ) -> None: ...


SAMPLERS: dict[str, Callable[[object | None], Sampler]] = {
    **{
        name: (lambda schedule, rule=rule: ConfidenceSampler(rule)) for name, rule in CONFIDENCE_RULES.items()
    },
    "first_hitting": lambda schedule: FirstHittingSampler(),
    "ancestral": lambda schedule: AncestralSampler(schedule),
    "dus": lambda schedule: DilatedSampler(),
    "remdm": lambda schedule: ReMDMSampler(schedule),
}


#: scores an adaptive count rule (threshold / factor) can use: probabilities in [0, 1]
PARALLEL_SCORES = {"low_confidence": float64_probability, "margin": CONFIDENCE_RULES["margin"]}


def _check_fast(cache: object, threshold: object, factor: object, remasking: str | Sampler) -> None:
    """Validate the fast-decoding options ``cache``, ``threshold`` and ``factor``."""
    if cache is not None and (not isinstance(cache, str) or cache not in CACHES):
        raise UserError(f"unknown cache {cache!r}; choose None, 'prefix' or 'dual'")
    if threshold is not None and not 0.0 < _real("threshold", threshold) <= 1.0:
        raise UserError(f"threshold must be in (0, 1], got {threshold}")
    if factor is not None and _real("factor", factor) <= 0.0:
        raise UserError(f"factor must be > 0, got {factor}")
    if threshold is not None and factor is not None:
        raise UserError("threshold and factor are two rules for the same count; give one of them")
    if (threshold is not None or factor is not None) and not (
        isinstance(remasking, str) and remasking in PARALLEL_SCORES
    ):
        raise UserError(
            f"threshold/factor count confident tokens; they work with remasking "
            f"{' or '.join(PARALLEL_SCORES)}, not {remasking!r}"
        )


def _sampler(remasking: str | Sampler, schedule: object | None, threshold: float | None, factor: float | None) -> Sampler:
    if threshold is not None:
        return ParallelSampler(PARALLEL_SCORES[remasking], Threshold(float(threshold)))
    if factor is not None:
        return ParallelSampler(PARALLEL_SCORES[remasking], Factor(float(factor)))
    if not isinstance(remasking, str):
        return remasking  # a sampler object
    return SAMPLERS[remasking](schedule)


def _check_token(name: str, value: int | None, vocab: int | None) -> None:
    if value is not None and (_int(name, value, 0) < 0 or (vocab is not None and value >= vocab)):
        raise UserError(f"{name} {value} is outside the model's vocabulary of {vocab} tokens")


def _suppressed_ids(
    tokens: Sequence[int] | Tensor | None, vocab: int | None, name: str = "suppress_tokens"
) -> Tensor | None:
    """Token ids ``tokens`` (argument ``name``) as a sorted unique int64 tensor [S] (None when empty), in vocab."""
    if tokens is None:
        return None
    try:
        ids = torch.as_tensor(tokens if isinstance(tokens, Tensor) else list(tokens))
    except (TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"{name} must be a sequence of token ids: {err}") from None
    if ids.dim() > 1 or (ids.numel() and (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool)):
        raise UserError(f"{name} must be a flat sequence of integer token ids, got {tokens!r}")
    ids = ids.reshape(-1).to(torch.int64).unique()  # [S] sorted
    if ids.numel() == 0:
        return None
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or (vocab is not None and hi >= vocab):
        raise UserError(f"{name} contain id {lo if lo < 0 else hi}, outside the vocabulary of {vocab} tokens")
    if vocab is not None and ids.numel() >= vocab:
        raise UserError(f"{name} cover every token of the vocabulary; nothing could be generated")
    return ids


def _on(ids: Tensor | None, device: torch.device) -> Tensor | None:
    return None if ids is None else ids.to(device)


def _int(name: str, value: object, low: int) -> int:
    """``value`` as an int >= ``low``; bools, floats and other types are refused (never silently rounded)."""
    if isinstance(value, bool) or not isinstance(value, (int, Integral)):
        raise UserError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise UserError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _real(name: str, value: object) -> float:
    """``value`` as a finite float (NaN and infinities are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Real)):
        raise UserError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise UserError(f"{name} must be finite, got {value}")
    return float(value)


def _check_settings(
    remasking: str | Sampler,
    gen_length: int,
    steps: int,
    block_length: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    cfg_scale: float,
) -> int:
    """Validate the sampler settings; returns the steps per block."""
    if not isinstance(remasking, str) and callable(getattr(remasking, "fill_block", None)):
        pass  # a sampler object
    elif not isinstance(remasking, str) or remasking not in SAMPLERS:
        raise UserError(f"unknown remasking {remasking!r}; choose one of {', '.join(SAMPLERS)}")
    gen_length = _int("gen_length", gen_length, 0)
    steps = _int("steps", steps, 1)
    if _real("temperature", temperature) < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None:
        _int("top_k", top_k, 1)
    if top_p is not None and not 0.0 < _real("top_p", top_p) <= 1.0:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")
    if _real("cfg_scale", cfg_scale) < 0:
        raise UserError(f"cfg_scale must be >= 0, got {cfg_scale}")
    if gen_length == 0:
        return steps
    block_length = _int("block_length", block_length, 1)
    if gen_length % block_length:
        raise UserError(
            f"gen_length {gen_length} is not a multiple of block_length {block_length} "
            "(block_length=None uses one block)"
        )
    num_blocks = gen_length // block_length
    if steps % num_blocks:
        raise UserError(
            f"steps {steps} is not divisible by the number of blocks {num_blocks} (gen_length / block_length)"
        )
    if remasking == "first_hitting" and steps != gen_length:
        raise UserError(
            f"first_hitting reveals one token per step: steps must equal gen_length ({gen_length})"
        )
    return steps // num_blocks


@torch.no_grad()
def generate(
    model: Callable,
    prompt_ids: PromptInput,
    gen_length: int = 64,
    steps: int = 64,
    block_length: int | None = 64,
    temperature: float = 0.0,
    remasking: str | Sampler = "low_confidence",
    mask_id: int | None = None,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    cfg_scale: float = 0.0,
    eos_id: int | None = None,
    pad_id: int | None = None,
    attention_mask: Tensor | None = None,
    schedule: object | None = None,
    generator: torch.Generator | None = None,
    suppress_tokens: Sequence[int] | Tensor | None = None,
    cache: str | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    stop_tokens: Sequence[int] | Tensor | None = None,
) -> Tensor:
    """Generate ``gen_length`` tokens after each prompt with a masked diffusion model.

    Args:
        model: callable ``ids [B, L] -> logits [B, L, V]`` (or an output with ``.logits``); it gets
            ``attention_mask=`` [B, L] when prompts are padded.
        prompt_ids: [B, P] or [P] LongTensor, or a list of 1-D prompts of different lengths (left-padded).
        gen_length: number of tokens to generate per row.
        steps: total sampling steps, split evenly over the blocks.
        block_length: semi-autoregressive block size (must divide ``gen_length``); None = one block.
        temperature: 0 = greedy; otherwise float64 Gumbel-max sampling from softmax(logits / T).
        remasking: sampler name (see the module docstring) or a sampler object.
        mask_id: mask token; defaults to ``model.mask_id`` / ``model.config.mask_token_id``.
        top_k, top_p: filters applied before sampling (only when ``temperature > 0``).
        cfg_scale: classifier-free guidance weight (LLaDA style, unconditional = prompt masked).
        eos_id: stop after the block where every row has produced EOS, and fill each row after its first EOS.
        pad_id: padding token for prompts of different lengths (and the fill after EOS; default EOS).
        attention_mask: [B, P] for a padded [B, P] prompt tensor (1 = real token, left padding).
        schedule: noise schedule for ``remasking="ancestral"`` (None = linear, a name, or a Schedule).
        generator: torch random generator for reproducible sampling.
        suppress_tokens: token ids that are never generated: their logits are set to ``-inf`` at masked positions
            after guidance and before drawing and scoring (LLaDA-V's ``generate_with_embeds`` does this for
            end-of-text and the chat-turn ids). None or empty = no suppression.
        cache: ``None`` (exact), ``"prefix"`` or ``"dual"``: Fast-dLLM's key/value caches, refreshed at every block
            (see :mod:`.caches`); needs a model that holds a cache (``DiffusionTransformer``, a LLaDA checkpoint).
        threshold: reveal per step every masked token of the block whose confidence is >= ``threshold`` (at least
            one); ``steps`` becomes an upper bound per block (see :mod:`.parallel`).
        factor: Fast-dLLM's factor rule: reveal the largest ``k`` whose k-th confidence is >= 1 - factor / (k + 1).
        stop_tokens: LLaDA-V's ``stopping_criteria`` (single-token stops, e.g. ``<|eot_id|>``): once a row reveals
            one, its block goes on only before it and later blocks are skipped; every position from it on is set to
            the stop token (see :mod:`.stop_tokens`). Works with the confidence samplers, without threshold/factor.

    Returns:
        LongTensor [B, P + gen_length]: the (left-padded) prompts followed by the generated tokens.
    """
    if block_length is None:
        block_length = gen_length
    steps_per_block = _check_settings(
        remasking, gen_length, steps, block_length, temperature, top_k, top_p, cfg_scale
    )
    _check_fast(cache, threshold, factor, remasking)
    gen_length, steps, block_length = int(gen_length), int(steps), int(block_length)
    if mask_id is not None:
        _int("mask_id", mask_id, 0)
    mask_id = resolve_mask_id(model, mask_id)
    vocab = vocab_size(model)
    for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
        _check_token(name, value, vocab)
    suppress = _suppressed_ids(suppress_tokens, vocab)
    if pad_id is not None and pad_id == mask_id:
        raise UserError(f"pad_id equals mask_id ({mask_id}); padding must not look like a mask")
    if cache is not None and not accepts_kv_cache(model):
        raise UserError(
            f"cache={cache!r} needs a model that holds a key/value cache (forward with kv_cache=, cache_position=, "
            "logits_slice=, e.g. DiffusionTransformer); this model is a plain callable"
        )
    if cache is not None or threshold is not None or factor is not None:
        # these loops run until the block has no mask: the mask token itself is never drawn
        suppress = _suppressed_ids([mask_id] + ([] if suppress is None else suppress.tolist()), vocab)

    fallback = prompt_ids.device if isinstance(prompt_ids, Tensor) else torch.device("cpu")
    device = model_device(model, fallback)
    prompt, prompt_mask = batch_prompts(prompt_ids, pad_id, attention_mask, device)  # [B, P], [B, P] | None
    batch, prompt_len = prompt.shape
    if prompt.numel() and (int(prompt.min()) < 0 or (vocab is not None and int(prompt.max()) >= vocab)):
        raise UserError(f"prompt_ids contain token ids outside the model's vocabulary of {vocab} tokens")
    limit = context_length(model)
    if limit is not None and prompt_len + gen_length > limit:
        raise UserError(
            f"prompt ({prompt_len} tokens) + gen_length ({gen_length}) = {prompt_len + gen_length} tokens "
            f"exceeds the model's context of {limit}"
        )
    if prompt_mask is not None and not accepts_attention_mask(model):
        raise UserError("prompts of different lengths need a model that accepts attention_mask=")

    x = torch.full((batch, prompt_len + gen_length), mask_id, dtype=torch.long, device=device)  # [B, L]
    x[:, :prompt_len] = prompt
    prompt_positions = torch.zeros_like(x, dtype=torch.bool)  # [B, L]
    prompt_positions[:, :prompt_len] = prompt != mask_id
    if cache is not None and bool((prompt == mask_id).any()):
        raise UserError(f"cache={cache!r} feeds each block from its start: mask tokens in the prompt (infilling) "
                        "need cache=None")
    full_mask = None
    if prompt_mask is not None:
        full_mask = torch.cat([prompt_mask, torch.ones_like(x[:, prompt_len:])], dim=1)  # [B, L]
    denoiser = Denoiser(model, full_mask, prompt_positions, mask_id, cfg_scale, _on(suppress, device))
    draw = TokenDraw(temperature, top_k, top_p, generator)
    sampler = _sampler(remasking, schedule, threshold, factor)
    stops = _suppressed_ids(stop_tokens, vocab, "stop_tokens")
    if stops is not None:
        if not (isinstance(sampler, ConfidenceSampler) and threshold is None and factor is None):
            raise UserError(
                f"stop_tokens work with the confidence samplers ({', '.join(CONFIDENCE_RULES)}) without threshold or "
                f"factor, not with remasking={remasking!r}"
            )
        sampler = StopConfidenceSampler(sampler.rule, stops.to(device), prompt_len)
    block_cache = CACHES[cache]

    for b, (start, end) in enumerate(block_spans(prompt_len, gen_length, block_length)):
        masked_cols = (x[:, :start] == mask_id).any(dim=0).nonzero()  # [n, 1] one sync per block
        region_start = int(masked_cols[0]) if len(masked_cols) else start
        span = Span(region_start, region_start if b == 0 else start, start, end)
        sampler.fill_block(x, block_cache(denoiser, span), draw, span, steps_per_block, mask_id)
        if eos_id is not None and end > prompt_len and bool(rows_finished(x, prompt_len, end, eos_id).all()):
            break
    if eos_id is not None:
        trim_after_eos(x, prompt_len, eos_id, eos_id if pad_id is None else pad_id)
    return x
