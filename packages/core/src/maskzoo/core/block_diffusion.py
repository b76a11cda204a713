"""Block diffusion (BD3-LM; Arriola et al. 2025, "Block Diffusion: Interpolating Between Autoregressive and
Diffusion Language Models", ICLR 2025, arXiv 2503.09573): training objective, attention mask, sampling.

A sequence of ``L`` tokens is cut into ``L / b`` blocks of ``b`` tokens. The model is autoregressive over blocks and a
masked-diffusion model inside each block:

    -log p(x) <= sum_blocks  E_{t ~ U[0,1]}  [ -alpha'(t) / (1 - alpha(t)) ] sum_{l in block, masked}
                                             -log p_theta(x_l | x_t^block, x^{<block})

Each block has its own time ``t``. Training runs all blocks in one forward pass on the input ``[x_t ; x_0]`` (2L
tokens, both halves with positions 0..L-1) under the mask (True = may attend)

    M = [[ M_BD  M_OBC ]      M_BD  (x_t -> x_t): same block             (block-diagonal)
         [  0    M_BC  ]]     M_OBC (x_t -> x_0): key block < query block  (offset block-causal)
                              M_BC  (x_0 -> x_0): key block <= query block (block-causal)

so noisy block ``k`` sees its own noisy tokens and the clean blocks before it. Block size 1 is autoregressive
(a masked token sees only the clean tokens before it), block size ``L`` is plain masked diffusion. "Clipped"
schedules (Sec. 5.2) draw ``t ~ U[beta, omega]`` in training to lower the variance of the gradient; evaluation uses
``U[0, 1]``, the NELBO.

Sampling goes block by block with an exact key/value cache: the clean blocks' keys/values are computed once (with
the block-causal mask, exactly as ``x_0`` is seen in training), each step of the current block feeds only that
block, which attends to the cache and to itself, and the finished block is fed once more, clean, to extend the cache.
Generation stops after the block in which every row has produced EOS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from maskzoo.core.attention import block_causal_mask
from maskzoo.core.errors import UserError
from maskzoo.core.kv_cache import KVCache
from maskzoo.core.losses import masked_token_ce
from maskzoo.core.masking import mask_tokens
from maskzoo.core.sampling.confidence import CONFIDENCE_RULES
from maskzoo.core.sampling.counts import Span
from maskzoo.core.sampling.draw import TokenDraw
from maskzoo.core.sampling.model_io import Denoiser, as_logits, resolve_mask_id
from maskzoo.core.sampling.parallel import ParallelSampler, Threshold, float64_probability
from maskzoo.core.sampling.remasking import ConfidenceSampler
from maskzoo.core.sampling.stopping import rows_finished, trim_after_eos
from maskzoo.core.schedules import Schedule, get_schedule

__all__ = ["BD3LMLoss", "bd3lm_attention_mask", "bd3lm_generate", "bd3lm_logits"]


def bd3lm_attention_mask(length: int, block_size: int, device: torch.device | str | None = None) -> Tensor:
    """The [x_t ; x_0] training mask ``[1, 1, 2L, 2L]`` (True = may attend); see the module docstring."""
    if block_size < 1 or length % block_size:
        raise UserError(f"block_size {block_size} must be >= 1 and divide the sequence length {length}")
    blk = torch.arange(length, device=device) // block_size  # [L]
    same = blk[:, None] == blk[None, :]  # [L, L] M_BD
    before = blk[None, :] < blk[:, None]  # [L, L] M_OBC
    upto = blk[None, :] <= blk[:, None]  # [L, L] M_BC
    top = torch.cat([same, before], dim=1)  # [L, 2L] noisy queries
    bottom = torch.cat([torch.zeros_like(same), upto], dim=1)  # [L, 2L] clean queries
    return torch.cat([top, bottom], dim=0)[None, None]  # [1, 1, 2L, 2L]


def bd3lm_logits(model: Callable, xt: Tensor, x0: Tensor, block_size: int) -> Tensor:
    """Logits ``[B, L, V]`` of the noisy half for the input ``[x_t ; x_0]`` (both [B, L]) under the BD3-LM mask."""
    length = x0.shape[1]
    ids = torch.cat([xt, x0], dim=1)  # [B, 2L]
    mask = bd3lm_attention_mask(length, block_size, x0.device)  # [1, 1, 2L, 2L]
    pos = torch.arange(length, device=x0.device).repeat(2)  # [2L] both halves at positions 0..L-1
    return as_logits(model(ids, attention_mask=mask, position_ids=pos, logits_slice=slice(0, length)))


class BD3LMLoss:
    """BD3-LM NELBO for the shared Trainer: ``loss, metrics = loss_fn(model, batch)``.

    Per row and block: ``t ~ U[t_range]`` floored at ``t_min``, each token masked with probability ``1 - alpha(t)``;
    the loss is the schedule-weighted cross-entropy of masked tokens summed and divided by the number of tokens
    (nats per token; with ``t_range = (0, 1)`` its expectation is the NELBO). Metrics: ``loss``, ``masked_ce``,
    ``mask_rate``.
    """

    def __init__(
        self,
        mask_id: int,
        block_size: int,
        *,
        schedule: Schedule | str = "linear",
        t_range: tuple[float, float] = (0.0, 1.0),
        t_min: float = 1e-3,
        generator: torch.Generator | None = None,
    ) -> None:
        lo, hi = (float(v) for v in t_range)
        if not 0.0 <= lo < hi <= 1.0:
            raise UserError(f"t_range must satisfy 0 <= beta < omega <= 1, got {t_range}")
        if block_size < 1:
            raise UserError(f"block_size must be >= 1, got {block_size}")
        self.mask_id, self.block_size = int(mask_id), int(block_size)
        self.schedule = get_schedule(schedule)
        self.t_range, self.t_min, self.generator = (lo, hi), float(t_min), generator

    def __call__(self, model: Callable, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x0 = batch["input_ids"]  # [B, L]
        b, length = x0.shape
        if length % self.block_size:
            raise UserError(f"sequence length {length} is not a multiple of block_size {self.block_size}")
        lo, hi = self.t_range
        u = torch.rand(b, length // self.block_size, generator=self.generator, device=x0.device)  # [B, K]
        t = (lo + (hi - lo) * u).clamp(min=self.t_min)  # [B, K] one time per block
        t_tok = t.repeat_interleave(self.block_size, dim=1)  # [B, L]
        xt, is_masked = mask_tokens(x0, self.schedule.mask_prob(t_tok), self.mask_id, None, self.generator)
        logits = bd3lm_logits(model, xt, x0, self.block_size)  # [B, L, V]
        ce = masked_token_ce(logits, x0, is_masked)  # [B, L]
        loss = (ce * self.schedule.weight(t_tok)).sum() / x0.numel()
        with torch.no_grad():
            n = is_masked.sum()
            stats = [loss.item(), (ce.sum() / n.clamp_min(1)).item(), (n / x0.numel()).item()]
        return loss, dict(zip(("loss", "masked_ce", "mask_rate"), stats, strict=True))

    def __repr__(self) -> str:
        return f"BD3LMLoss(block_size={self.block_size}, schedule={self.schedule!r}, t_range={self.t_range})"


@torch.no_grad()
def bd3lm_nelbo(model: Callable, x0: Tensor, block_size: int, mask_id: int, num_samples: int = 8,
                generator: torch.Generator | None = None) -> Tensor:
    """NELBO estimate in nats per sequence ``[B]`` for ``x0`` [B, L] (linear schedule, stratified block times)."""
    b, length = x0.shape
    k = length // block_size
    total = torch.zeros(b, dtype=torch.float64, device=x0.device)
    offset = torch.rand(b, k, generator=generator, device=x0.device)  # [B, K]
    for s in range(num_samples):
        t = ((s + offset) / num_samples).clamp(min=1e-6)  # [B, K] stratified over [0, 1)
        t_tok = t.repeat_interleave(block_size, dim=1)  # [B, L]
        xt, is_masked = mask_tokens(x0, t_tok, mask_id, None, generator)
        ce = masked_token_ce(bd3lm_logits(model, xt, x0, block_size), x0, is_masked)  # [B, L]
        total += (ce / t_tok).sum(dim=1).double()
    return total / num_samples


def _sampler(remasking: str, threshold: float | None):
    if threshold is not None:
        return ParallelSampler(float64_probability, Threshold(float(threshold)))
    if remasking not in CONFIDENCE_RULES:
        raise UserError(f"bd3lm_generate: remasking must be one of {', '.join(CONFIDENCE_RULES)}, got {remasking!r}")
    return ConfidenceSampler(CONFIDENCE_RULES[remasking])


@torch.no_grad()
def bd3lm_generate(
    model: Callable,
    prompt_ids: Tensor,
    gen_length: int,
    block_size: int,
    steps: int,
    *,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    threshold: float | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    mask_id: int | None = None,
    generator: torch.Generator | None = None,
    stats: dict | None = None,
) -> Tensor:
    """Generate ``gen_length`` tokens after ``prompt_ids`` [B, P] block by block with an exact key/value cache.

    Blocks are aligned to multiples of ``block_size`` from position 0 as in training; a prompt ending inside a
    block fills that block's first positions. Each block is decoded in ``steps`` steps by the LLaDA confidence
    sampler (or at most ``steps`` with ``threshold``). ``stats["forwards"]`` counts model calls when given.

    Returns:
        [B, P + gen_length]; with ``eos_id``, everything after a row's first generated EOS is ``pad_id`` (or EOS).
    """
    if prompt_ids.dim() != 2 or prompt_ids.shape[1] < 1:
        raise UserError("bd3lm_generate: prompt_ids must be [batch, length] with length >= 1")
    if gen_length < 1 or steps < 1 or block_size < 1:
        raise UserError("bd3lm_generate: gen_length, steps and block_size must be >= 1")
    mask_id = resolve_mask_id(model, mask_id)
    sampler = _sampler(remasking, threshold)
    batch, prompt_len = prompt_ids.shape
    total = prompt_len + gen_length
    x = torch.full((batch, total), mask_id, dtype=torch.long, device=prompt_ids.device)  # [B, T]
    x[:, :prompt_len] = prompt_ids
    suppress = torch.tensor([mask_id], device=x.device)
    denoiser = Denoiser(model, None, torch.zeros_like(x, dtype=torch.bool), mask_id, 0.0, suppress)
    draw = TokenDraw(float(temperature), None, None, generator)
    cache = KVCache()
    first = (prompt_len // block_size) * block_size
    calls = 0
    if first:  # the clean prompt blocks, block-causally
        model(x[:, :first], attention_mask=block_causal_mask(first, block_size, x.device), kv_cache=cache,
              logits_slice=slice(0, 0))
        calls += 1
    for start in range(first, total, block_size):
        end = min(start + block_size, total)
        span = Span(start, start, start, end)

        def logits_fn(ids: Tensor, start: int = start, end: int = end) -> Tensor:
            return denoiser.logits(ids, start, end, start, end, cache)  # [B, end - start, V]

        before = denoiser.calls
        sampler.fill_block(x, logits_fn, draw, span, steps, mask_id)
        calls += denoiser.calls - before
        done = eos_id is not None and bool(rows_finished(x, prompt_len, end, eos_id).all())
        if end == total or done:
            break
        model(x[:, start:end], kv_cache=cache, cache_position=start, logits_slice=slice(0, 0))  # clean keys/values
        calls += 1
    if eos_id is not None:
        trim_after_eos(x, prompt_len, eos_id, eos_id if pad_id is None else pad_id)
        x[:, prompt_len:] = x[:, prompt_len:].masked_fill(x[:, prompt_len:] == mask_id, eos_id if pad_id is None
                                                          else pad_id)
    if stats is not None:
        stats["forwards"] = calls
    return x
