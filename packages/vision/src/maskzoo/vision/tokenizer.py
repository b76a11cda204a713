"""Tokenizers that own their special tokens: ``<image>``, mask, padding, end of sequence and chat markers.

Two implementations share one small interface (:class:`Tokenizer`):

* :class:`WordTokenizer` — the built-in tokenizer of the embedded captioner: lower-cased words and punctuation
  over a fixed vocabulary (the scene grammar's words plus prompt words), special tokens written ``<name>``.
* :class:`HFTokenizer` — a local ``tokenizer.json`` read by the ``tokenizers`` library (published LLaDA / LLaDA-V
  checkpoints; LLaDA's mask token is ``<|mdm_mask|>``, its end of text ``<|endoftext|>``).

``<image>`` in a text becomes one :attr:`image_id`; :func:`expand_image_tokens` later repeats it once per
image feature, and the model overwrites those positions with projected image features (LLaVA, Liu et al. 2023;
LLaDA-V, You et al. 2025, arXiv 2505.16933). No other module writes a literal special id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from maskzoo.core.checkpoint import resolve_inside
from maskzoo.core.errors import UserError

IMAGE_TOKEN = "<image>"
_WORD_RE = re.compile(r"<[a-z_]+>|[a-z0-9]+|[^\sa-z0-9]")


class Tokenizer(Protocol):
    """What the vision package needs from a tokenizer."""

    vocab_size: int
    mask_id: int
    pad_id: int
    eos_id: int
    image_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int] | torch.Tensor) -> str: ...

    def token_id(self, token: str) -> int: ...

    def save(self, directory: Path) -> dict: ...


# ---------------------------------------------------------------------------------------------------- built-in
WORD_SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>", "<image>", "<unk>", "<user>", "<assistant>", "<eot>")
PROMPT_WORDS = ("describe", "the", "image", "what", "is", "in", "this", "picture", "caption", ".", "?", ",")


class WordTokenizer:
    """Word-level tokenizer over a fixed vocabulary; ids ``0..len(WORD_SPECIALS)-1`` are the specials."""

    kind = "word"

    def __init__(self, words: list[str]) -> None:
        words = [w for w in dict.fromkeys(words) if w not in WORD_SPECIALS]
        self.vocab: list[str] = [*WORD_SPECIALS, *words]
        self._index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def for_scenes(cls) -> WordTokenizer:
        """The embedded captioner's vocabulary: scene-grammar words plus a few prompt words."""
        from maskzoo.vision.scenes import caption_vocabulary

        return cls([*caption_vocabulary(), *PROMPT_WORDS])

    vocab_size = property(lambda self: len(self.vocab))
    pad_id = property(lambda self: self._index["<pad>"])
    bos_id = property(lambda self: self._index["<bos>"])
    eos_id = property(lambda self: self._index["<eos>"])
    mask_id = property(lambda self: self._index["<mask>"])
    image_id = property(lambda self: self._index["<image>"])
    unk_id = property(lambda self: self._index["<unk>"])

    def token_id(self, token: str) -> int:
        if token not in self._index:
            raise UserError(f"token {token!r} is not in the tokenizer's vocabulary")
        return self._index[token]

    def encode(self, text: str) -> list[int]:
        """text -> ids; words outside the vocabulary become ``<unk>``."""
        return [self._index.get(w, self.unk_id) for w in _WORD_RE.findall(text.lower())]

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """ids -> text, dropping special tokens; no space before punctuation."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        out = ""
        for i in ids:
            if not 0 <= i < len(self.vocab) or i < len(WORD_SPECIALS):
                continue
            w = self.vocab[i]
            out += w if (not out or not w[0].isalnum()) else " " + w
        return out

    def save(self, directory: Path) -> dict:
        (Path(directory) / "vocab.json").write_text(json.dumps({"type": "word", "vocab": self.vocab}, indent=0))
        return {"type": "word", "file": "vocab.json"}

    @classmethod
    def load(cls, directory: Path, spec: dict) -> WordTokenizer:
        f = resolve_inside(directory, spec.get("file", "vocab.json"), "tokenizer file")
        if not f.is_file():
            raise UserError(f"tokenizer file not found: {f}")
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{f}: not valid JSON ({e})") from None
        if (not isinstance(d, dict) or d.get("type") != "word" or not isinstance(d.get("vocab"), list)
                or tuple(d["vocab"][: len(WORD_SPECIALS)]) != WORD_SPECIALS
                or not all(isinstance(w, str) for w in d["vocab"])):
            raise UserError(f"{f}: not a maskzoo word tokenizer")
        return cls(d["vocab"][len(WORD_SPECIALS):])


# ------------------------------------------------------------------------------------------- tokenizers library
#: LLaDA's special tokens (GSAI-ML/LLaDA-8B-Instruct tokenizer_config.json / special_tokens_map.json).
LLADA_SPECIALS = {"mask": "<|mdm_mask|>", "eos": "<|endoftext|>", "pad": "<|endoftext|>",
                  "bos": "<|startoftext|>", "eot": "<|eot_id|>"}
#: in-vocabulary stand-ins for ``<image>`` when the vocabulary has no such token (their embedding is overwritten)
IMAGE_FALLBACKS = ("<image>", "<|reserved_token_0|>", "<|reserved_special_token_0|>")


class HFTokenizer:
    """A local ``tokenizer.json`` (``tokenizers`` library) with the special-token names given in ``specials``."""

    kind = "hf"

    def __init__(self, path: str | Path, specials: dict[str, str] | None = None,
                 image_token: str | None = None) -> None:
        from tokenizers import Tokenizer as _Tok

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise UserError(f"tokenizer file not found: {path}")
        try:
            self._tok = _Tok.from_file(str(path))
        except Exception as e:  # the library raises a bare Exception on malformed JSON
            raise UserError(f"{path}: not a readable tokenizer.json ({str(e).splitlines()[0]})") from None
        self.path = path
        self.specials = {**LLADA_SPECIALS, **(specials or {})}
        self.image_token = image_token or next(
            (t for t in IMAGE_FALLBACKS if self._tok.token_to_id(t) is not None), None)
        if self.image_token is None:
            raise UserError(f"{path}: no <image> token; name one of its tokens with image_token=...")
        for name in ("mask", "eos", "pad"):
            self.token_id(self.specials[name])

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int:
        i = self._tok.token_to_id(token)
        if i is None:
            raise UserError(f"token {token!r} is not in {self.path}")
        return i

    @property
    def bos_id(self) -> int | None:
        """The beginning-of-text id (``<|startoftext|>`` for LLaDA), None when the vocabulary has none."""
        return self._tok.token_to_id(self.specials.get("bos", ""))

    mask_id = property(lambda self: self.token_id(self.specials["mask"]))
    eos_id = property(lambda self: self.token_id(self.specials["eos"]))
    pad_id = property(lambda self: self.token_id(self.specials["pad"]))
    image_id = property(lambda self: self.token_id(self.image_token))

    def encode(self, text: str) -> list[int]:
        """Split on ``<image>`` first (as LLaDA-V's tokenizer_image_token), so the marker is always one id."""
        out: list[int] = []
        for k, chunk in enumerate(text.split(IMAGE_TOKEN)):
            if k:
                out.append(self.image_id)
            if chunk:
                out.extend(self._tok.encode(chunk, add_special_tokens=False).ids)
        return out

    def encode_text(self, text: str) -> list[int]:
        """``text`` as Hugging Face's ``tokenizer(text).input_ids``: the file's post-processor adds whatever
        special tokens it adds (LLaDA's adds none); ``<image>`` is not treated specially."""
        return self._tok.encode(text, add_special_tokens=True).ids

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return self._tok.decode([i for i in ids if i != self.image_id], skip_special_tokens=True)

    def save(self, directory: Path) -> dict:
        self._tok.save(str(Path(directory) / "tokenizer.json"))
        return {"type": "hf", "file": "tokenizer.json", "specials": self.specials, "image_token": self.image_token}

    @classmethod
    def load(cls, directory: Path, spec: dict) -> HFTokenizer:
        specials, image_token = spec.get("specials"), spec.get("image_token")
        if specials is not None and not (isinstance(specials, dict)
                                         and all(isinstance(v, str) for v in specials.values())):
            raise UserError(f"{directory}: tokenizer 'specials' must map names to token strings")
        if image_token is not None and not isinstance(image_token, str):
            raise UserError(f"{directory}: tokenizer 'image_token' must be a string")
        return cls(resolve_inside(directory, spec.get("file", "tokenizer.json"), "tokenizer file"), specials,
                   image_token)


TOKENIZERS = {"word": WordTokenizer, "hf": HFTokenizer}


def load_tokenizer(directory: str | Path, spec: dict) -> Tokenizer:
    """Rebuild the tokenizer a checkpoint's config.json describes (``{"type": "word"|"hf", ...}``)."""
    if not isinstance(spec, dict):
        raise UserError(f"{directory}: config.json 'tokenizer' must be an object")
    kind = spec.get("type")
    if kind not in TOKENIZERS:
        raise UserError(f"{directory}: unknown tokenizer type {kind!r}")
    return TOKENIZERS[kind].load(Path(directory), spec)


def expand_image_tokens(ids: list[int], image_id: int, tokens_per_image: int | Sequence[int]) -> list[int]:
    """Repeat every ``image_id`` once per projected image feature: ``tokens_per_image`` times, or the k-th
    placeholder ``tokens_per_image[k]`` times (tiled images of different sizes)."""
    counts = list(tokens_per_image) if isinstance(tokens_per_image, Sequence) else None
    if counts is not None and counts and ids.count(image_id) != len(counts):
        raise UserError(f"the prompt has {ids.count(image_id)} <image> placeholder(s) but {len(counts)} image(s) "
                        "were given")
    out: list[int] = []
    k = 0
    for i in ids:
        if i != image_id:
            out.append(i)
            continue
        out.extend([i] * (counts[k] if counts is not None else tokens_per_image))  # type: ignore[operator]
        k += 1
    return out
