"""Training losses: the MDiff4STR objective and the autoregressive baseline's cross-entropy.

MDiff4STR (Du et al. 2025, arXiv 2512.01422, eq. 3-5). For a label of ``n`` characters, a mask ``M`` drawn by
one of the six strategies with masking probability ``p`` (:mod:`maskzoo.vision.str.noise`) and ``x_t`` the
label with ``M`` replaced by MASK::

    L_mask = (1/B) sum_b  1/(n_b + 2)  sum_{i in M_b}  CE(f(x_t, I)_i, x0_i) / p_b

(the core's :func:`~maskzoo.core.losses.weighted_masked_ce` with weight ``1/p`` and per-row normaliser
``n + 2``). Token replacement: ``x_r`` = ``x_0`` with the masked positions replaced by the first pass's
argmax predictions (wrong ones are non-mask noise); the second pass is scored at every label position::

    L_rep = mean_{b, i <= n_b}  CE(f(x_r, I)_i, x0_i)
    L     = L_mask + replace_weight * L_rep

The image is encoded once and shared by both passes. The autoregressive baseline minimises the mean CE of
next-character prediction with teacher forcing over the same label positions.

Both losses add ``ctc_weight`` x CTC (Graves et al. 2006) of the model's auxiliary column head when it has one
(``ctc_aux``; hybrid CTC/attention training, Kim et al. 2017): ``-log p(label | image) / n``, batch mean. It is
not part of MDiff4STR; it gives the small encoder an alignment signal from the first step, which a decoder
that must first learn where to look lacks (the first CPU models sat at 0-3 % for 1,200 updates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskzoo.core.losses import weighted_masked_ce
from maskzoo.core.training import unwrap_model
from maskzoo.vision.str.alphabet import Alphabet
from maskzoo.vision.str.noise import NoiseMix, noisy_input, replace_with_predictions


def mdiff_mask_loss(logits: Tensor, targets: Tensor, is_masked: Tensor, p_mask: Tensor, lengths: Tensor) -> Tensor:
    """``L_mask`` above: logits ``[B, L, V]``, targets ``[B, L]``, mask ``[B, L]``, p ``[B]``, lengths ``[B]``."""
    return weighted_masked_ce(logits, targets, is_masked, 1.0 / p_mask, (lengths + 2).float())


def label_ce(logits: Tensor, targets: Tensor, pad_id: int) -> Tensor:
    """Mean CE over every non-PAD target position (characters and EOS)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=pad_id)


def ctc_aux_loss(net: nn.Module, memory: Tensor, targets: Tensor, alphabet: Alphabet) -> Tensor:
    """CTC of ``net``'s column head on ``memory [B, N, d]`` against the labels in ``targets [B, L]``."""
    log_probs = net.ctc_log_probs(memory)  # [W', B, V]
    lengths = alphabet.lengths(targets)  # [B]
    chars = torch.arange(targets.shape[1], device=targets.device)[None, :] < lengths[:, None]  # [B, L]
    inputs = torch.full((targets.shape[0],), log_probs.shape[0], dtype=torch.long, device=targets.device)
    return F.ctc_loss(log_probs, targets[chars], inputs, lengths, blank=alphabet.ctc_blank_id,
                      reduction="mean", zero_infinity=True)


def _add_ctc(loss: Tensor, metrics: dict, net: nn.Module, memory: Tensor, targets: Tensor, alphabet: Alphabet,
             weight: float) -> Tensor:
    if weight > 0 and getattr(net, "ctc_head", None) is not None:
        ctc = ctc_aux_loss(net, memory, targets, alphabet)
        metrics["loss_ctc"] = ctc.detach()
        loss = loss + weight * ctc
    return loss


class MDiffLoss:
    """``loss_fn(model, batch) -> (loss, metrics)`` for the Trainer; batch = ``{"images", "targets"}``."""

    def __init__(self, alphabet: Alphabet, noise: NoiseMix, ctc_weight: float = 0.0) -> None:
        noise.validate()
        self.alphabet, self.noise, self.ctc_weight = alphabet, noise, ctc_weight

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        a = self.alphabet
        images, targets = batch["images"], batch["targets"]  # [B, C, H, W], [B, L]
        lengths = a.lengths(targets)  # [B]
        is_masked, p_mask, _ = self.noise.sample(lengths + 1, targets.shape[1])  # [B, L], [B]
        net = unwrap_model(model)
        memory = net.encode(images)  # [B, N, d]
        logits = net.decode(memory, noisy_input(targets, is_masked, a.mask_id, a.pad_id))  # [B, L, V]
        loss_mask = mdiff_mask_loss(logits, targets, is_masked, p_mask, lengths)
        metrics = {"loss_mask": loss_mask.detach(), "num_tokens": int((lengths + 1).sum())}
        loss = loss_mask
        if self.noise.replace_weight > 0:
            predictions = logits.detach().argmax(-1)  # [B, L]
            x_r = replace_with_predictions(targets, is_masked, predictions, a.mask_id, a.pad_id)
            loss_rep = label_ce(net.decode(memory, x_r), targets, a.pad_id)
            loss = loss + self.noise.replace_weight * loss_rep
            metrics["loss_replace"] = loss_rep.detach()
            metrics["replaced_wrong"] = ((x_r != targets) & is_masked).float().sum() / is_masked.sum().clamp(min=1)
        return _add_ctc(loss, metrics, net, memory, targets, a, self.ctc_weight), metrics


def shift_right(targets: Tensor, bos_id: int, mask_id: int, pad_id: int) -> Tensor:
    """Teacher-forcing input of the autoregressive baseline ``[B, L]``: BOS, then the targets shifted right
    (PAD targets fed as MASK, like the diffusion decoder's input after EOS)."""
    x = torch.roll(targets, 1, dims=1)
    x[:, 0] = bos_id
    return torch.where(x == pad_id, torch.full_like(x, mask_id), x)


class ARLoss:
    """Teacher-forced next-character cross-entropy of the autoregressive baseline."""

    def __init__(self, alphabet: Alphabet, ctc_weight: float = 0.0) -> None:
        self.alphabet, self.ctc_weight = alphabet, ctc_weight

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        a = self.alphabet
        images, targets = batch["images"], batch["targets"]
        net = unwrap_model(model)
        memory = net.encode(images)  # [B, N, d]
        logits = net.decode(memory, shift_right(targets, a.bos_id, a.mask_id, a.pad_id))  # [B, L, V]
        loss = label_ce(logits, targets, a.pad_id)
        metrics = {"num_tokens": int((targets != a.pad_id).sum())}
        return _add_ctc(loss, metrics, net, memory, targets, a, self.ctc_weight), metrics
