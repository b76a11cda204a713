"""Inference modes of MDiff4STR (Du et al. 2025, arXiv 2512.01422, sec. 3.3) and ``read_text``.

Every mode starts from the all-MASK sequence ``[B, L]`` (``L = max_len + 1``), encodes the image once and
calls the decoder ``f(x, memory) -> p(x_0 | x, I)`` one or more times. Each returns ``(ids [B, L],
confidence [B, L])`` where ``confidence`` is the probability of each chosen id when it was chosen.

| mode                  | decoder calls                 | rule |
| --------------------- | ----------------------------- | ---- |
| parallel (default)    | 1                             | argmax at every position |
| low_confidence        | k (``steps``, default 3)      | per step, reveal still-masked positions before the predicted EOS whose confidence is at least their mean; the last step reveals the rest |
| autoregressive        | n + 1                         | reveal position i at step i, left to right |
| semi_autoregressive   | ceil((n + 1) / block_length)  | reveal the next ``block_length`` positions at once, left to right |
| cloze                 | 1 + ``steps`` (default 1)     | parallel, then per round re-mask each position alone (one batched call holding every copy) and re-predict it from all the others |

The autoregressive baseline (``model.causal``) decodes left to right with its causal decoder
(:func:`decode_causal`); the diffusion modes do not apply to it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from maskzoo.core.errors import UserError
from maskzoo.vision.str.images import to_input
from maskzoo.vision.str.model import STRModel

Decoded = tuple[Tensor, Tensor]


def _probs(model: STRModel, memory: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Confidence and argmax ``[B, L]`` of ``softmax(f(x, memory))``."""
    return torch.softmax(model.decode(memory, x).float(), dim=-1).max(dim=-1)


def after_eos(ids: Tensor, eos_id: int) -> Tensor:
    """``[B, L]`` True at positions strictly after the first EOS of each row (False everywhere without EOS)."""
    is_eos = ids == eos_id
    first = torch.where(is_eos.any(-1), is_eos.int().argmax(-1), ids.shape[1])  # [B]
    return torch.arange(ids.shape[1], device=ids.device)[None, :] > first[:, None]


def _all_masked(model: STRModel, memory: Tensor) -> Tensor:
    return torch.full((memory.shape[0], model.alphabet.seq_len), model.alphabet.mask_id, dtype=torch.long,
                      device=memory.device)


def decode_parallel(model: STRModel, memory: Tensor) -> Decoded:
    """One decoder call on the all-MASK input."""
    conf, ids = _probs(model, memory, _all_masked(model, memory))
    return ids, conf


def decode_low_confidence(model: STRModel, memory: Tensor, steps: int = 3) -> Decoded:
    """``steps`` calls; each reveals the confident half (>= mean) of the positions still to decide."""
    a = model.alphabet
    x = _all_masked(model, memory)  # [B, L]
    conf = torch.zeros(x.shape, device=x.device)
    for step in range(steps):
        p, pred = _probs(model, memory, x)  # [B, L]
        still = x == a.mask_id
        reveal = still & ~after_eos(torch.where(still, pred, x), a.eos_id)  # undecided, up to the predicted EOS
        if step < steps - 1:
            mean = (p * reveal).sum(-1, keepdim=True) / reveal.sum(-1, keepdim=True).clamp(min=1)  # [B, 1]
            reveal = reveal & (p >= mean)
        x, conf = torch.where(reveal, pred, x), torch.where(reveal, p, conf)
        still = x == a.mask_id
        if not (still & ~after_eos(torch.where(still, pred, x), a.eos_id)).any():
            break
    still = x == a.mask_id  # only positions after the EOS remain: filled from the last call
    return torch.where(still, pred, x), torch.where(still, p, conf)


def _blockwise(model: STRModel, memory: Tensor, block_length: int) -> Decoded:
    """Left to right, ``block_length`` positions per call, until every row has revealed an EOS."""
    a = model.alphabet
    x = _all_masked(model, memory)
    conf = torch.zeros(x.shape, device=x.device)
    pos = torch.arange(x.shape[1], device=x.device)
    for start in range(0, x.shape[1], block_length):
        p, pred = _probs(model, memory, x)
        block = ((pos >= start) & (pos < start + block_length))[None, :].expand_as(x)
        x = torch.where(block, pred, x)
        conf = torch.where(block, p, conf)
        if (x == a.eos_id).any(-1).all():
            break
    return x, conf


def decode_autoregressive(model: STRModel, memory: Tensor) -> Decoded:
    """Diffusion decoder, one position per call, left to right (the MDM's autoregressive order)."""
    return _blockwise(model, memory, 1)


def decode_semi_autoregressive(model: STRModel, memory: Tensor, block_length: int = 4) -> Decoded:
    """Diffusion decoder, ``block_length`` positions per call, left to right."""
    return _blockwise(model, memory, block_length)


def decode_cloze(model: STRModel, memory: Tensor, steps: int = 1) -> Decoded:
    """Parallel prediction, then ``steps`` rounds of cloze refinement: each position up to the predicted EOS
    is re-masked alone and re-predicted given all the others (the copies of a row go through one call).
    Positions after the predicted EOS are MASK in the copies, as they are in every training input."""
    a = model.alphabet
    ids, conf = decode_parallel(model, memory)  # [B, L]
    b, n = ids.shape
    for _ in range(steps):
        tail = after_eos(ids, a.eos_id)  # [B, L]
        span = int((~tail).sum(-1).max())  # positions to refine (up to the last EOS)
        copies = ids.masked_fill(tail, a.mask_id)[:, None, :].repeat(1, span, 1)  # [B, span, L]
        idx = torch.arange(span, device=ids.device)
        copies[:, idx, idx] = a.mask_id  # copy j masks position j
        mem = memory[:, None].expand(b, span, *memory.shape[1:]).reshape(b * span, *memory.shape[1:])
        p, pred = _probs(model, mem, copies.view(b * span, n))  # [B*span, L]
        p, pred = p.view(b, span, n)[:, idx, idx], pred.view(b, span, n)[:, idx, idx]  # [B, span]
        keep = after_eos(ids, a.eos_id)[:, :span]
        ids = ids.clone()
        ids[:, :span] = torch.where(keep, ids[:, :span], pred)
        conf = conf.clone()
        conf[:, :span] = torch.where(keep, conf[:, :span], p)
    return ids, conf


def decode_causal(model: STRModel, memory: Tensor) -> Decoded:
    """Autoregressive baseline: greedy left to right with the causal decoder (input: BOS + prefix)."""
    a = model.alphabet
    b = memory.shape[0]
    x = torch.full((b, a.seq_len + 1), a.mask_id, dtype=torch.long, device=memory.device)  # [B, L + 1]
    x[:, 0] = a.bos_id
    conf = torch.zeros((b, a.seq_len), device=memory.device)
    for i in range(a.seq_len):
        logits = model.decode(memory, x[:, : i + 1])[:, -1]  # [B, V]
        p, pred = torch.softmax(logits.float(), -1).max(-1)  # [B]
        x[:, i + 1], conf[:, i] = pred, p
        if (x[:, 1:] == a.eos_id).any(-1).all():
            break
    return x[:, 1:], conf


@dataclass(frozen=True)
class Reading:
    """One crop's reading: the text and one confidence per character (then the EOS confidence)."""

    text: str
    char_confidences: list[float]
    eos_confidence: float


#: mode name -> (decoding function, the name of its one option or None)
MODES: dict[str, tuple[Callable[..., Decoded], str | None]] = {
    "parallel": (decode_parallel, None),
    "low_confidence": (decode_low_confidence, "steps"),
    "autoregressive": (decode_autoregressive, None),
    "semi_autoregressive": (decode_semi_autoregressive, "block_length"),
    "cloze": (decode_cloze, "steps"),
}


def check_mode(model: STRModel, mode: str) -> None:
    if model.causal:
        if mode != "autoregressive":
            raise UserError(f"mode {mode!r}: this is an autoregressive model; only mode 'autoregressive' applies")
    elif mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_options(model: STRModel, mode: str, options: dict[str, int | None]) -> list[str]:
    """Raise :class:`UserError` unless ``mode`` applies to the model (:func:`check_mode`) and each given option is
    a positive integer. Returns one message per given option that ``mode`` does not read (``steps`` with
    ``parallel``): the command line refuses them, :func:`read_text` warns and ignores them, so code that passes
    one ``steps`` to every mode keeps working."""
    check_mode(model, mode)
    used = None if model.causal else MODES[mode][1]
    ignored = []
    for name, value in options.items():
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise UserError(f"{name} must be an integer >= 1, not {value!r}")
        if name != used:
            owner = _option_owner(name)
            ignored.append(f"{name} does not apply to mode {mode!r}" + (f" (it sets {owner})" if owner else ""))
    return ignored


def _option_owner(name: str) -> str:
    return " and ".join(m for m, (_, option) in MODES.items() if option == name)


def _decode(model: STRModel, memory: Tensor, mode: str, options: dict[str, int | None]) -> Decoded:
    if model.causal:
        return decode_causal(model, memory)
    fn, option = MODES[mode]
    value = options.get(option) if option else None
    return fn(model, memory) if value is None else fn(model, memory, value)


def to_batch(model: STRModel, images: Sequence[Image.Image]) -> Tensor:
    c = model.config
    return torch.stack([to_input(im, c.in_chans, c.height, c.width) for im in images])  # [B, C, H, W]


@torch.no_grad()
def read_text(model: STRModel, images: Sequence[Image.Image] | Tensor, mode: str = "parallel",
              steps: int | None = None, block_length: int | None = None, batch_size: int = 64) -> list[Reading]:
    """Read the word in each crop. ``images``: PIL images (any size; resized / padded to the model's input)
    or a prepared batch ``[B, C, H, W]``. ``steps``: low_confidence steps (default 3) or cloze rounds
    (default 1); ``block_length``: semi_autoregressive block (default 4). An option the mode does not read is
    ignored with a ``UserWarning``."""
    for message in check_options(model, mode, {"steps": steps, "block_length": block_length}):
        warnings.warn(f"{message}; ignored", UserWarning, stacklevel=3)  # past torch.no_grad
    if not _is_int(batch_size) or batch_size < 1:
        raise UserError(f"batch size must be an integer >= 1, not {batch_size!r}")
    model.eval()
    device = next(model.parameters()).device
    out: list[Reading] = []
    n = len(images)
    for lo in range(0, n, batch_size):
        chunk = images[lo : lo + batch_size]
        x = chunk if isinstance(chunk, Tensor) else to_batch(model, chunk)
        ids, conf = _decode(model, model.encode(x.to(device)), mode, {"steps": steps, "block_length": block_length})
        out.extend(_reading(model, row, c) for row, c in zip(ids.cpu(), conf.cpu()))
    return out


def _reading(model: STRModel, ids: Tensor, conf: Tensor) -> Reading:
    text = model.alphabet.decode(ids)
    k = len(text)
    eos = float(conf[k]) if k < len(conf) and int(ids[k]) == model.alphabet.eos_id else 0.0
    return Reading(text, [round(float(v), 4) for v in conf[:k]], round(eos, 4))
