"""Protein generation with the core's masked-diffusion samplers: unconditional, templates, motifs, binders.

Every task is one *canvas* of ESM tokens in which the positions to generate hold ``<mask>`` and everything else
is fixed context, filled by ``maskzoo.core.sampling.generate`` in infilling mode (``gen_length = 0``: every mask of
the canvas is revealed, ``steps`` model calls, the chosen remasking rule and temperature):

==============  ======================================================================
unconditional   ``[<cls>] <mask> x L [<eos>]``
template        ``[<cls>] M K T <mask> <mask> <mask> G G L [<eos>]``   (``"MKT___GGL"``)
motif           a template with motif segments at given or random offsets
binder          ``[<cls>] target [<eos>] <mask> x L [<eos>]``          (DSM-ppi; Hallee et al. 2025)
==============  ======================================================================

Only the 20 canonical amino acids can be drawn (:class:`ResidueOnly` sets every other logit to -inf). DSM's own
sampler defaults are used: temperature 1 and ``random`` remasking with one token per step (``steps = L``), which
samples the model's joint distribution when the denoiser is exact (any-order autoregressive sampling; see the
first-hitting discussion in Zheng et al. 2024, arXiv:2409.02908). Token dropout is off in DSM models, so an
all-mask canvas is an ordinary input (see ``maskzoo.protein.model``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from maskzoo.core.errors import UserError
from maskzoo.core.sampling import generate
from maskzoo.protein.alphabet import TEMPLATE_GAP, get_alphabet

DATA_DIR = Path(__file__).parent / "data"


class ResidueOnly(nn.Module):
    """Wrap a denoiser so that only canonical residues have finite logits (specials, X/B/Z/U/O, gaps: -inf)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.register_buffer("_forbidden", get_alphabet().noncanonical_mask.clone(), persistent=False)

    @property
    def mask_id(self) -> int:
        return self.model.mask_id

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.model(input_ids, attention_mask=attention_mask)  # [B, L, V]
        return logits.masked_fill(self._forbidden.to(logits.device), float("-inf"))


@dataclass
class SamplerSettings:
    """How the core sampler runs: ``steps`` None = one token per step (= number of masked positions)."""

    steps: int | None = None
    remasking: str = "random"
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    batch_size: int = 16


#: Sampling settings used when neither the command line nor the checkpoint's generation block sets them.
PROTEIN_FALLBACK = {"temperature": 1.0, "remasking": "random"}
_UNSUPPORTED = {"block_length": "--block-length", "cache": "--cache", "threshold": "--threshold",
                "factor": "--factor"}


def model_generation_block(model: nn.Module) -> dict:
    """The checkpoint's validated ``generation`` block (``{}`` for fair-esm files and models built in Python)."""
    from maskzoo.core.generation_config import model_generation_block as core_block

    return core_block(model)


def _merge(explicit: dict, block: dict) -> dict:
    from maskzoo.core.generation_config import validate_generation_block

    merged = dict(PROTEIN_FALLBACK)
    merged.update(validate_generation_block(block, "the checkpoint's generation block"))
    merged.update({k: v for k, v in explicit.items() if v is not None})
    for key, flag in _UNSUPPORTED.items():
        if merged.get(key) not in (None, "none"):
            raise UserError(f"{flag} is not supported by protein generation (canvases are filled as one block)")
    return merged


def settings_from_block(block: dict, batch_size: int = 16) -> SamplerSettings:
    """``SamplerSettings`` from a generation block (keys of ``maskzoo.core.sampling.generate``)."""
    m = _merge({}, block)
    return SamplerSettings(m.get("steps"), m["remasking"], float(m["temperature"]), m.get("top_k"), m.get("top_p"),
                           batch_size)  # fmt: skip


def settings_from_args(args, block: dict) -> tuple[SamplerSettings, str]:
    """``(SamplerSettings, length spec)`` from the command line > the checkpoint's block > ``PROTEIN_FALLBACK``."""
    explicit = {k: getattr(args, k, None) for k in ("steps", "temperature", "top_k", "top_p", "remasking",
                                                     "block_length", "cache", "threshold", "factor")}  # fmt: skip
    m = _merge(explicit, block)
    length = args.length if args.length is not None else str(m.get("gen_length", 150))
    settings = SamplerSettings(m.get("steps"), m["remasking"], float(m["temperature"]), m.get("top_k"),
                               m.get("top_p"), args.batch_size)  # fmt: skip
    return settings, length


def describe(settings: SamplerSettings) -> str:
    """``temperature=1.0, remasking=random, steps=one per residue``, for status lines."""
    steps = settings.steps if settings.steps is not None else "one per residue"
    extra = "".join(f", {k}={v}" for k, v in (("top_k", settings.top_k), ("top_p", settings.top_p)) if v is not None)
    return f"temperature={settings.temperature:g}, remasking={settings.remasking}, steps={steps}{extra}"


def count_model_calls(model: nn.Module, canvases: Sequence[torch.Tensor], settings: SamplerSettings) -> int:
    """Denoiser calls ``fill_canvases`` will make (for a progress bar with an ETA)."""
    a = get_alphabet()
    by_len: dict[int, list[int]] = {}
    for c in canvases:
        by_len.setdefault(len(c), []).append(int((c == a.mask_id).sum()))
    calls = 0
    for masks in by_len.values():
        for s in range(0, len(masks), settings.batch_size):
            n = max(masks[s : s + settings.batch_size])
            calls += 0 if n == 0 else (settings.steps or n)
    return calls


def decode_filled(filled: Sequence[torch.Tensor], canvases: Sequence[torch.Tensor], target: str | None) -> list[str]:
    """Residue strings of filled canvases; for binder canvases only the binder (after the target's <eos>)."""
    a = get_alphabet()
    if target is None:
        return [a.decode(c) for c in filled]
    start = len(target) + 2
    return [a.decode(c[start:-1]) for c in filled]


# --------------------------------------------------------------------------------------------------- lengths


def natural_lengths() -> list[int]:
    """Chain lengths of the packaged PDB training set (the embedded default's training data)."""
    from maskzoo.protein.fasta import read_fasta

    return [len(r.seq) for r in read_fasta(DATA_DIR / "pdb_train.fasta", validate=False)]


def parse_length_spec(spec: str | int, num: int, rng: random.Random, max_len: int) -> list[int]:
    """``150`` (fixed), ``100-200`` (uniform integers, inclusive), ``natural`` (PDB training lengths) or
    ``fasta:PATH`` (lengths of a FASTA file); every length must fit ``max_len`` residues."""
    s = str(spec).strip()
    if re.fullmatch(r"\d+", s):
        lengths = [int(s)] * num
    elif m := re.fullmatch(r"(\d+)\s*-\s*(\d+)", s):
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise UserError(f"--length {s}: the lower bound is above the upper bound")
        lengths = [rng.randint(lo, hi) for _ in range(num)]
    elif s in ("natural", "train") or s.startswith("fasta:"):
        if s.startswith("fasta:"):
            from maskzoo.protein.fasta import read_fasta

            pool = [len(r.seq) for r in read_fasta(s[len("fasta:") :])]
        else:
            pool = natural_lengths()
        pool = [n for n in pool if n <= max_len]
        if not pool:
            raise UserError(f"--length {s}: no length fits the model's context of {max_len} residues")
        lengths = [rng.choice(pool) for _ in range(num)]
    else:
        raise UserError(f"--length {s!r}: expected N, A-B, natural or fasta:PATH")
    for n in lengths:
        if n < 1:
            raise UserError("--length must be at least 1")
        if n > max_len:
            raise UserError(f"--length {n} is longer than the model's context of {max_len} residues")
    return lengths


# --------------------------------------------------------------------------------------------------- canvases


def template_canvas(template: str) -> torch.Tensor:
    """``"MKT___GGL"`` -> ``[<cls>, M, K, T, <mask> x 3, G, G, L, <eos>]``; letters validated."""
    a = get_alphabet()
    t = template.strip().upper()
    if not t:
        raise UserError("--template is empty")
    ids = [a.cls_id]
    for i, ch in enumerate(t):
        if ch == TEMPLATE_GAP:
            ids.append(a.mask_id)
        else:
            ids.extend(a.residue_ids(ch, f"--template position {i + 1}"))
    ids.append(a.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def parse_motifs(specs: Sequence[str]) -> list[tuple[str, int | None]]:
    """``["GHHGG@20", "WW"]`` -> ``[("GHHGG", 19), ("WW", None)]`` (1-based positions on the command line)."""
    out = []
    for spec in specs:
        seq, _, pos = spec.partition("@")
        seq = get_alphabet().validate(seq, f"--motif {spec}")
        if pos and not re.fullmatch(r"\d+", pos.strip()):
            raise UserError(f"--motif {spec}: position after '@' must be a positive integer")
        p = int(pos) - 1 if pos else None
        if p is not None and p < 0:
            raise UserError(f"--motif {spec}: positions start at 1")
        out.append((seq, p))
    return out


def motif_template(motifs: Sequence[tuple[str, int | None]], length: int, rng: random.Random) -> str:
    """A template of ``length`` with each motif at its offset (random, non-overlapping when not given)."""
    canvas = [TEMPLATE_GAP] * length
    taken = [False] * length
    placed = sorted(motifs, key=lambda m: m[1] is None)  # fixed positions first
    for seq, pos in placed:
        if len(seq) > length:
            raise UserError(f"--motif {seq}: longer than --length {length}")
        if pos is None:
            free = [p for p in range(length - len(seq) + 1) if not any(taken[p : p + len(seq)])]
            if not free:
                raise UserError(f"--motif {seq}: no room left in a sequence of length {length}")
            pos = rng.choice(free)
        if pos + len(seq) > length:
            raise UserError(f"--motif {seq}@{pos + 1}: runs past the end of a sequence of length {length}")
        if any(taken[pos : pos + len(seq)]):
            raise UserError(f"--motif {seq}@{pos + 1}: overlaps another motif")
        canvas[pos : pos + len(seq)] = list(seq)
        taken[pos : pos + len(seq)] = [True] * len(seq)
    return "".join(canvas)


def binder_canvas(target: str, binder_length: int) -> tuple[torch.Tensor, int]:
    """``[<cls>] target [<eos>] <mask> x n [<eos>]`` and the index of the first binder position."""
    a = get_alphabet()
    t = a.residue_ids(target, "--target")
    ids = [a.cls_id, *t, a.eos_id, *([a.mask_id] * binder_length), a.eos_id]
    return torch.tensor(ids, dtype=torch.long), len(t) + 2


# --------------------------------------------------------------------------------------------------- sampling


def _check_context(model: nn.Module, n_tokens: int, what: str) -> None:
    limit = model.config.max_seq_len
    if n_tokens > limit:
        raise UserError(
            f"{what}: {n_tokens} tokens exceed the model's context of {limit} (incl. special tokens)"
        )


@torch.no_grad()
def fill_canvases(
    model: nn.Module,
    canvases: Sequence[torch.Tensor],
    settings: SamplerSettings,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Fill every ``<mask>`` of each 1-D canvas; canvases of equal length share core ``generate`` calls."""
    a = get_alphabet()
    wrapped = ResidueOnly(model).eval()
    device = next(model.parameters()).device
    out: list[torch.Tensor | None] = [None] * len(canvases)
    by_len: dict[int, list[int]] = {}
    for i, c in enumerate(canvases):
        _check_context(model, len(c), f"sequence {i + 1}")
        by_len.setdefault(len(c), []).append(i)
    for _, idx in sorted(by_len.items()):
        for s in range(0, len(idx), settings.batch_size):
            chunk = idx[s : s + settings.batch_size]
            x = torch.stack([canvases[i] for i in chunk]).to(device)  # [b, L]
            n_masked = int((x == a.mask_id).sum(1).max())
            if n_masked == 0:
                res = x
            else:
                steps = settings.steps or n_masked
                res = generate(
                    wrapped,
                    x,
                    gen_length=0,
                    steps=steps,
                    block_length=None,
                    temperature=settings.temperature,
                    remasking=settings.remasking,
                    top_k=settings.top_k,
                    top_p=settings.top_p,
                    generator=generator,
                )  # [b, L]
            for row, i in enumerate(chunk):
                out[i] = res[row].cpu()
    return out  # type: ignore[return-value]


def unconditional_canvas(n: int) -> torch.Tensor:
    """``[<cls>] <mask> x n [<eos>]``."""
    a = get_alphabet()
    return torch.tensor([a.cls_id] + [a.mask_id] * n + [a.eos_id])


def generate_proteins(
    model: nn.Module | str | None = None,
    lengths: int | Sequence[int] = 150,
    settings: SamplerSettings | None = None,
    generator: torch.Generator | None = None,
    *,
    num: int = 1,
    seed: int | None = None,
) -> list[str]:
    """Unconditional sequences: one call from a model (or a zoo name / path; ``None`` = the embedded default).

    ``lengths``: one length for ``num`` sequences, or a list of lengths. ``settings`` default to the checkpoint's
    ``generation`` block (else DSM's: temperature 1, random order, one residue per step). ``seed`` seeds a fresh
    generator when no ``generator`` is given.
    """
    if model is None or isinstance(model, str):
        from maskzoo.protein.checkpoints import load_model
        from maskzoo.protein.zoo import DEFAULT_MODEL

        model = load_model(model or DEFAULT_MODEL)
    if isinstance(lengths, int):
        if num < 1:
            raise UserError(f"num must be >= 1, got {num}")
        lengths = [lengths] * num
    if any(not isinstance(n, int) or n < 1 for n in lengths):
        raise UserError(f"lengths must be positive integers, got {list(lengths)[:5]}")
    if settings is None:
        settings = settings_from_block(model_generation_block(model))
    if generator is None and seed is not None:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    a = get_alphabet()
    return [a.decode(c) for c in fill_canvases(model, [unconditional_canvas(n) for n in lengths], settings, generator)]


def fill_templates(
    model: nn.Module,
    templates: Sequence[str],
    settings: SamplerSettings,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Fill the ``_`` positions of each template; fixed letters are kept exactly."""
    a = get_alphabet()
    return [
        a.decode(c)
        for c in fill_canvases(model, [template_canvas(t) for t in templates], settings, generator)
    ]


def design_binders(
    model: nn.Module,
    target: str,
    lengths: Sequence[int],
    settings: SamplerSettings,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Binder sequences generated after ``[<cls>] target [<eos>]`` (the target is never changed)."""
    a = get_alphabet()
    canvases, starts = zip(*(binder_canvas(target, n) for n in lengths))
    filled = fill_canvases(model, list(canvases), settings, generator)
    return [a.decode(c[s:-1]) for c, s in zip(filled, starts)]
