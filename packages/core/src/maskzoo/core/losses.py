"""Training losses: one weighted cross-entropy over masked positions, and its named configurations.

Every masked-diffusion objective in this library is

    loss = reduce_b( sum_i  m_bi * w_bi * CE(logits_bi, x0_bi) ,  N )

with ``m_bi = 1`` where position ``i`` of row ``b`` is masked, ``w`` a weight per row (or per token) and ``N``
an explicit normaliser:

- ``N`` a scalar (float or 0-d tensor):   ``loss = sum_b sum_i m w CE / N``.
- ``N`` a tensor ``[B]`` (one per row):     ``loss = (1/B) sum_b ( sum_i m w CE / N_b )``.

The named configurations differ only in ``w`` and ``N``:

| configuration          | weight w                  | normaliser N                               | source |
| ---------------------- | ------------------------- | ------------------------------------------ | ------ |
| ``mdlm_nelbo``         | -alpha'(t) / (1-alpha(t)) | number of maskable tokens in the batch     | MDLM (Sahoo et al. 2024, eq. 11), MD4 (Shi et al. 2024, eq. 5) |
| ``llada_pretrain_loss``| 1 / p_mask                | B * L (every position, as LLaDA divides)   | LLaDA (Nie et al. 2025, eq. 3; GUIDELINES.md) |
| ``llada_sft_loss``     | 1 / p_mask                | per row: answer length (maskable tokens, padding EOS included), then mean over rows | LLaDA eq. 5; GUIDELINES.md |

With ``N`` = number of modelled tokens, ``mdlm_nelbo`` is an unbiased one-sample estimate of the NELBO per
token in nats (an upper bound on the negative log-likelihood per token). Under the linear schedule with
LLaDA's time floor, ``t = p_mask`` and all three weights coincide; LLaDA's ``p_mask = (1 - eps) t + eps`` is
``maskzoo.core.masking.llada_mask_prob``.

``DiffusionLoss`` and ``ARLoss`` are the callables the shared Trainer uses: ``loss_fn(model, batch) ->
(loss, metrics)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from maskzoo.core.errors import UserError
from maskzoo.core.masking import TimeSampler, floor_times, get_time_sampler, mask_tokens
from maskzoo.core.schedules import LinearSchedule, LogLinearSchedule, Schedule, get_schedule

# --------------------------------------------------------------------------------------------------------------
# The one weighted cross-entropy


def logits_of(output: Any) -> Tensor:
    """Logits from a model output: the tensor itself or its ``.logits`` attribute."""
    return output.logits if hasattr(output, "logits") else output


def masked_token_ce(logits: Tensor, targets: Tensor, is_masked: Tensor) -> Tensor:
    """Per-token cross-entropy ``-log softmax(logits)[target]`` in float32 at masked positions, 0 elsewhere.

    Only the masked rows of ``logits`` ``[B, L, V]`` are normalised, so the cost scales with the number of
    masked tokens. Returns ``[B, L]``.
    """
    ce = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)  # [B, L]
    selected = logits[is_masked].float()  # [N, V]
    ce[is_masked] = F.cross_entropy(selected, targets[is_masked], reduction="none")  # [N]
    return ce


def reduce_weighted_ce(
    ce: Tensor, is_masked: Tensor, weight: Tensor | float, normalizer: Tensor | float
) -> Tensor:
    """``reduce_b(sum_i m_bi w_bi ce_bi, N)`` as described in the module docstring; returns a 0-d tensor.

    Weights at unmasked positions are zeroed first, so an infinite weight (``t = 0``) on a row with nothing
    masked contributes 0 and no NaN gradient.
    """
    w = torch.as_tensor(weight, dtype=torch.float32, device=ce.device)
    if w.dim() == 1:
        w = w[:, None]  # [B, 1]
    w = torch.where(is_masked, w.expand_as(ce), torch.zeros((), device=ce.device))  # [B, L]
    rows = (w * ce).sum(dim=-1)  # [B]
    n = torch.as_tensor(normalizer, dtype=torch.float32, device=ce.device)
    if n.dim() == 0:
        return rows.sum() / n
    if n.shape != rows.shape:
        raise ValueError(
            f"normalizer must be a scalar or one value per row {tuple(rows.shape)}, got {tuple(n.shape)}"
        )
    return (rows / n).mean()


def weighted_masked_ce(
    logits: Tensor,
    targets: Tensor,
    is_masked: Tensor,
    weight: Tensor | float,
    normalizer: Tensor | float,
) -> Tensor:
    """The one masked-diffusion loss: weighted cross-entropy over masked positions with an explicit normaliser.

    Args:
        logits: ``[B, L, V]`` predictions of ``x_0`` from ``x_t``.
        targets: ``[B, L]`` clean tokens ``x_0``.
        is_masked: ``[B, L]`` bool, positions masked in ``x_t`` (the only ones that are scored).
        weight: ``[B]`` per row, ``[B, L]`` per token, or a float.
        normalizer: scalar ``N`` -> ``sum(w * CE) / N``; ``[B]`` -> ``mean_b(sum_i(w * CE)_b / N_b)``.

    Returns:
        0-d float32 tensor.
    """
    return reduce_weighted_ce(masked_token_ce(logits, targets, is_masked), is_masked, weight, normalizer)


# --------------------------------------------------------------------------------------------------------------
# Normalisers (what a loss is "per")


def per_maskable_token(maskable: Tensor) -> Tensor:
    """Scalar: number of maskable (modelled) tokens in the batch (MDLM/MD4 NELBO per token)."""
    return maskable.sum().clamp_min(1).float()


def per_position(maskable: Tensor) -> Tensor:
    """Scalar: ``B * L``, every position of the batch (LLaDA pre-training)."""
    return torch.tensor(float(maskable.numel()), device=maskable.device)


def per_answer_length(maskable: Tensor) -> Tensor:
    """``[B]``: maskable tokens of each row, i.e. the answer length (LLaDA SFT); the loss is then averaged
    over rows."""
    return maskable.sum(dim=-1).clamp_min(1).float()


Normalization = Callable[[Tensor], Tensor]
NORMALIZATIONS: dict[str, Normalization] = {
    "maskable_tokens": per_maskable_token,
    "positions": per_position,
    "answer_length": per_answer_length,
}


def get_normalization(name: str | Normalization) -> Normalization:
    """Normaliser by name (``maskable_tokens``, ``positions``, ``answer_length``); a callable is returned as is."""
    if callable(name):
        return name
    try:
        return NORMALIZATIONS[name]
    except KeyError:
        raise UserError(
            f"unknown loss normalization {name!r}; choose one of {', '.join(NORMALIZATIONS)}"
        ) from None


# --------------------------------------------------------------------------------------------------------------
# Named configurations (pure functions of already computed logits)


def mdlm_nelbo(
    logits: Tensor,
    x0: Tensor,
    is_masked: Tensor,
    t: Tensor,
    schedule: Schedule,
    maskable: Tensor | None = None,
) -> Tensor:
    """MDLM/MD4 NELBO per token (nats): weight ``-alpha'(t)/(1-alpha(t))`` per row ``t [B]``, divided by the
    number of maskable tokens (``B * L`` when ``maskable`` is None) (Sahoo et al. 2024; Shi et al. 2024)."""
    n = per_maskable_token(maskable) if maskable is not None else float(x0.numel())
    return weighted_masked_ce(logits, x0, is_masked, schedule.weight(t), n)


def llada_pretrain_loss(logits: Tensor, x0: Tensor, is_masked: Tensor, p_mask: Tensor) -> Tensor:
    """LLaDA pre-training loss: ``sum_masked CE / p_mask`` divided by ``B * L`` (Nie et al. 2025, eq. 3)."""
    return weighted_masked_ce(logits, x0, is_masked, 1.0 / p_mask, float(x0.numel()))


def llada_sft_loss(logits: Tensor, x0: Tensor, is_masked: Tensor, p_mask: Tensor, maskable: Tensor) -> Tensor:
    """LLaDA response-only SFT loss (Nie et al. 2025, eq. 5): the prompt is never masked (``maskable`` marks
    the answer, padding EOS included); ``CE / p_mask`` is summed per row, divided by that row's answer length,
    then averaged over the batch."""
    return weighted_masked_ce(logits, x0, is_masked, 1.0 / p_mask, per_answer_length(maskable))


# --------------------------------------------------------------------------------------------------------------
# Trainer callables


def _batch_tensors(batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(input_ids, attention_mask, maskable)`` with ``maskable`` excluding padding (``attention_mask == 0``)."""
    if "input_ids" not in batch:
        raise UserError("training batch has no 'input_ids'")
    ids = batch["input_ids"]  # [B, L]
    attention_mask = batch.get("attention_mask")
    maskable = batch.get("maskable")
    for name, extra in (("maskable", maskable), ("attention_mask", attention_mask)):
        if extra is not None and extra.shape != ids.shape:
            raise UserError(
                f"batch {name!r} has shape {tuple(extra.shape)}, input_ids has {tuple(ids.shape)}"
            )
    return ids, attention_mask, modelled_positions(ids, maskable, attention_mask)


def modelled_positions(ids: Tensor, maskable: Tensor | None, attention_mask: Tensor | None) -> Tensor:
    """``[B, L]`` bool: positions that may be masked and scored: ``maskable`` (default all) and not padding."""
    allowed = torch.ones_like(ids, dtype=torch.bool) if maskable is None else maskable.to(torch.bool)
    if attention_mask is not None:
        allowed = allowed & attention_mask.to(torch.bool)
    return allowed


def model_logits(model: Callable, ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    """``model(input_ids=ids[, attention_mask=...])`` as logits ``[B, L, V]`` (the mask only when given)."""
    if attention_mask is None:
        return logits_of(model(input_ids=ids))
    return logits_of(model(input_ids=ids, attention_mask=attention_mask))


class DiffusionLoss:
    """Masked-diffusion training loss for the shared Trainer: ``loss, metrics = loss_fn(model, batch)``.

    One call: draw ``t [B]`` with ``time_sampler``, floor it to ``(1 - t_min) t + t_min``, mask each maskable
    token with probability ``1 - alpha(t)``, predict ``x_0`` and return ``weighted_masked_ce`` with the
    schedule's NELBO weight and the chosen normaliser.

    Args:
        mask_id: the model's mask token id.
        schedule: a ``Schedule`` or its name.
        time_sampler: ``antithetic`` (default), ``uniform`` or a ``TimeSampler`` callable.
        normalization: ``maskable_tokens`` (default), ``positions``, ``answer_length`` or a callable
            ``maskable [B, L] -> scalar | [B]``.
        t_min: time floor (0 gives the exact NELBO estimator, whose variance is infinite for weights ~ 1/t).
        generator: RNG for times and masks; ``None`` uses torch's global RNG (saved in Trainer checkpoints).

    Batch: ``input_ids [B, L]``, optional ``maskable [B, L]`` bool (False: never masked, never scored) and
    ``attention_mask [B, L]`` (0 = padding, also never masked). Metrics (floats): ``loss``, ``masked_ce``
    (mean unweighted CE of masked tokens, nats) and ``mask_rate`` (masked / maskable).
    """

    def __init__(
        self,
        mask_id: int,
        *,
        schedule: Schedule | str = "linear",
        time_sampler: TimeSampler | str = "antithetic",
        normalization: Normalization | str = "maskable_tokens",
        t_min: float = 1e-3,
        generator: torch.Generator | None = None,
    ):
        if not 0.0 <= t_min < 1.0:
            raise UserError(f"t_min must be in [0, 1), got {t_min}")
        self.mask_id = mask_id
        self.schedule = get_schedule(schedule)
        self.time_sampler = get_time_sampler(time_sampler)
        self.normalization = get_normalization(normalization)
        self.t_min = float(t_min)
        self.generator = generator

    @classmethod
    def mdlm(cls, mask_id: int, **kwargs) -> DiffusionLoss:
        """MDLM: log-linear schedule, antithetic times, NELBO per maskable token (Sahoo et al. 2024)."""
        defaults = dict(
            schedule=LogLinearSchedule(), time_sampler="antithetic", normalization="maskable_tokens"
        )
        return cls(mask_id, **{**defaults, **kwargs})

    @classmethod
    def llada_pretrain(cls, mask_id: int, **kwargs) -> DiffusionLoss:
        """LLaDA pre-training: ``p_mask = (1 - 1e-3) t + 1e-3``, weight ``1/p_mask``, divided by ``B * L``."""
        defaults = dict(
            schedule=LinearSchedule(), time_sampler="uniform", normalization="positions", t_min=1e-3
        )
        return cls(mask_id, **{**defaults, **kwargs})

    @classmethod
    def llada_sft(cls, mask_id: int, **kwargs) -> DiffusionLoss:
        """LLaDA response-only SFT: like pre-training, but ``maskable`` marks the answer and each row is
        divided by its answer length before the batch mean."""
        defaults = dict(
            schedule=LinearSchedule(), time_sampler="uniform", normalization="answer_length", t_min=1e-3
        )
        return cls(mask_id, **{**defaults, **kwargs})

    def __call__(self, model: Callable, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x0, attention_mask, maskable = _batch_tensors(batch)  # [B, L]
        t = self.time_sampler(x0.shape[0], generator=self.generator, device=x0.device)  # [B]
        t = floor_times(t, self.t_min)  # [B]
        xt, is_masked = mask_tokens(x0, self.schedule.mask_prob(t), self.mask_id, maskable, self.generator)
        logits = model_logits(model, xt, attention_mask)  # [B, L, V]
        ce = masked_token_ce(logits, x0, is_masked)  # [B, L]
        loss = reduce_weighted_ce(ce, is_masked, self.schedule.weight(t), self.normalization(maskable))
        with torch.no_grad():
            n_masked = is_masked.sum()
            stats = torch.stack(
                [loss.detach(), ce.sum() / n_masked.clamp_min(1), n_masked / maskable.sum().clamp_min(1)]
            ).tolist()
        return loss, dict(zip(("loss", "masked_ce", "mask_rate"), stats))

    def __repr__(self) -> str:
        return (
            f"DiffusionLoss(mask_id={self.mask_id}, schedule={self.schedule!r}, "
            f"time_sampler={getattr(self.time_sampler, '__name__', self.time_sampler)}, "
            f"normalization={getattr(self.normalization, '__name__', self.normalization)}, t_min={self.t_min:g})"
        )


class ARLoss:
    """Next-token cross-entropy for an autoregressive (causal) baseline trained by the same Trainer.

    Position ``i`` predicts token ``i + 1``; a target is scored when it is a real token
    (``attention_mask``) and, if given, ``maskable`` (e.g. only answer tokens). The loss is the mean over
    scored targets in the batch, in nats. The first token of each row is never predicted. Metrics: ``loss``.
    """

    def __call__(self, model: Callable, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        ids, attention_mask, maskable = _batch_tensors(batch)  # [B, L]
        logits = model_logits(model, ids, attention_mask)  # [B, L, V]
        scored = maskable[:, 1:]  # [B, L-1]
        ce = masked_token_ce(logits[:, :-1], ids[:, 1:], scored)  # [B, L-1]
        loss = ce.sum() / scored.sum().clamp_min(1)
        return loss, {"loss": loss.item()}

    def __repr__(self) -> str:
        return "ARLoss()"
