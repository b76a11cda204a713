"""Text generation without digging: a model with its tokenizer and its own sampling settings.

::

    from maskzoo.core import generate_text, load_pipeline

    print(generate_text("ROMEO:", seed=0))             # one sample from the embedded model
    pipe = load_pipeline("text-char-shakespeare")       # or a model directory / run directory
    ids = pipe.encode("ROMEO:")                         # LongTensor [6]
    texts = pipe.generate("ROMEO:", num=3, seed=0)      # list of 3 strings, prompt included
    print(pipe.decode(ids), pipe.generation)            # "ROMEO:" and the checkpoint's generation block

Sampling settings: keyword arguments > the checkpoint's ``generation`` block > the built-in defaults
(:mod:`maskzoo.core.generation_config`), exactly as on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from maskzoo.core.generation_config import GENERATION_KEYS, model_generation_block, resolve_generation
from maskzoo.core.text.tokenizer import CharTokenizer

TEXT_FALLBACK = {"gen_length": 128}


@dataclass
class TextPipeline:
    """A loaded text model, its tokenizer and its generation block."""

    model: torch.nn.Module
    tokenizer: CharTokenizer
    generation: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, text: str) -> torch.Tensor:
        """text -> LongTensor [len(text)] (a character outside the alphabet is a UserError)."""
        return self.tokenizer.encode(text)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """ids -> text (special tokens dropped, stops at EOS)."""
        return self.tokenizer.decode(ids)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments ``generate()`` gets: ``overrides`` > the generation block > defaults."""
        return resolve_generation(overrides, self.generation, TEXT_FALLBACK)

    def context_check(self, prompt_len: int, gen_length: int) -> None:
        from maskzoo.core.errors import UserError

        limit = self.model.config.max_seq_len
        if prompt_len + gen_length > limit:
            raise UserError(f"prompt ({prompt_len}) + length ({gen_length}) = {prompt_len + gen_length} characters "
                            f"exceeds the model's context of {limit}")

    @torch.no_grad()
    def generate(self, prompt: str = "", *, num: int = 1, seed: int | None = None,
                 generator: torch.Generator | None = None, **overrides: Any) -> list[str]:
        """``num`` samples continuing ``prompt`` (each includes the prompt). ``overrides``: ``gen_length``,
        ``steps``, ``block_length``, ``temperature``, ``top_k``, ``top_p``, ``remasking``, ... override the
        generation block; any other keyword (``cfg_scale``, ``eos_id``, ...) goes to ``generate()`` unchanged."""
        from maskzoo.core.errors import UserError
        from maskzoo.core.sampling import generate

        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise UserError(f"num must be an integer >= 1, got {num!r}")
        passthrough = {k: v for k, v in overrides.items() if k not in GENERATION_KEYS}
        kwargs = self.settings(**{k: v for k, v in overrides.items() if k in GENERATION_KEYS})
        ids = self.encode(prompt)  # [P]
        self.context_check(ids.numel(), kwargs["gen_length"])
        if generator is None and seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        prompts = ids.unsqueeze(0).expand(num, -1).to(self.device)  # [N, P]
        out = generate(self.model, prompts, generator=generator, **kwargs, **passthrough)  # [N, P + gen_length]
        return [self.decode(row) for row in out.cpu()]


def load_pipeline(name_or_path: str | Path | None = None, device: str | torch.device = "cpu") -> TextPipeline:
    """A :class:`TextPipeline` for a zoo name (default: the embedded ``text-char-shakespeare``), a model
    directory, a run directory or a step checkpoint of ``maskzoo text train``."""
    from maskzoo.core.text.model import load_text_model

    model, tok = load_text_model(name_or_path, device=device)
    return TextPipeline(model, tok, model_generation_block(model))


def generate_text(prompt: str = "", *, checkpoint: str | Path | None = None, seed: int | None = None,
                  device: str | torch.device = "cpu", **settings: Any) -> str:
    """One sample continuing ``prompt`` (prompt included) from ``checkpoint`` (default: the embedded model).

    ``settings`` override the checkpoint's generation block (``gen_length=64``, ``temperature=0.5``, ...).
    For many calls, load once with :func:`load_pipeline` and call its ``generate``.
    """
    return load_pipeline(checkpoint, device=device).generate(prompt, seed=seed, **settings)[0]
