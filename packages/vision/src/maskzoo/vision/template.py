"""Chat templates: conversations -> token ids plus the response mask the SFT loss needs.

A conversation is a list of turns ``(role, text)`` with role ``"user"`` or ``"assistant"`` (LLaVA's
``"human"``/``"gpt"`` are accepted). Rendered as

    bos [system_prefix system end_of_turn] user text end_of_turn assistant reply end_of_turn user ...

Only assistant replies (and their ``end_of_turn``) are *response* tokens. LLaDA's SFT (Nie et al. 2025,
arXiv 2502.09992, sec. 2.3) masks response tokens only and pads every row of a batch with end-of-sequence
tokens that count as response, so the model learns to end its answers; LLaDA-V (arXiv 2505.16933) trains the
same way with image features in the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from maskzoo.core.errors import UserError
from maskzoo.vision.tokenizer import IMAGE_TOKEN, Tokenizer, expand_image_tokens

ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant"}


@dataclass(frozen=True)
class ChatTemplate:
    """The strings around each turn; every one is text the tokenizer encodes."""

    name: str
    bos: str
    user: str
    assistant: str
    end_of_turn: str
    system_prefix: str = ""
    system: str = ""
    #: prompt ids as LLaDA-V's ``tokenizer_image_token`` makes them (see :func:`llava_image_tokens`)
    llava_image_tokens: bool = False

    def prefix(self, role: str) -> str:
        return self.user if role == "user" else self.assistant


TEMPLATES: dict[str, ChatTemplate] = {
    # the built-in word tokenizer's markers
    "word": ChatTemplate("word", bos="<bos>", user="<user>", assistant="<assistant>", end_of_turn="<eot>"),
    # LLaDA-8B-Instruct / LLaDA-V (Llama-3 style headers); LLaDA-V's llava_llada adds a system turn
    "llada": ChatTemplate(
        "llada", bos="<|startoftext|>",
        user="<|start_header_id|>user<|end_header_id|>\n\n",
        assistant="<|start_header_id|>assistant<|end_header_id|>\n\n",
        end_of_turn="<|eot_id|>",
        system_prefix="<|start_header_id|>system<|end_header_id|>\n\n",
    ),
}
#: LLaDA-V's ``llava_llada`` conversation: the LLaDA template with its system turn
TEMPLATES["llava_llada"] = replace(
    TEMPLATES["llada"], name="llava_llada", llava_image_tokens=True,
    system=("You are a helpful language and vision assistant. You are able to understand the visual content that "
            "the user provides, and assist the user with a variety of tasks using natural language."),
)

DEFAULT_PROMPT = "<image> describe the image ."


def get_template(name: str) -> ChatTemplate:
    if name not in TEMPLATES:
        raise UserError(f"unknown chat template {name!r}; choose one of {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def normalise_turns(turns: list) -> list[tuple[str, str]]:
    """Accept ``(role, text)`` pairs or LLaVA dicts ``{"from": "human"|"gpt", "value": ...}``."""
    out = []
    for t in turns:
        role, text = (t.get("from", t.get("role")), t.get("value", t.get("content"))) if isinstance(t, dict) else t
        if role not in ROLES or not isinstance(text, str):
            raise UserError(f"conversation turn {t!r}: expected role human/gpt/user/assistant with a text value")
        out.append((ROLES[role], text))
    if not out or out[-1][0] != "assistant":
        raise UserError("a training conversation must end with an assistant turn")
    return out


def encode_conversation(tok: Tokenizer, template: ChatTemplate, turns: list, tokens_per_image: int,
                        ) -> tuple[list[int], list[bool]]:
    """Full conversation -> (ids, is_response) with each ``<image>`` expanded to ``tokens_per_image`` ids."""
    turns = normalise_turns(turns)
    ids: list[int] = tok.encode(template.bos)
    resp: list[bool] = [False] * len(ids)
    if template.system:
        sys_ids = tok.encode(template.system_prefix + template.system + template.end_of_turn)
        ids += sys_ids
        resp += [False] * len(sys_ids)
    for role, text in turns:
        head = tok.encode(template.prefix(role))
        body = tok.encode(text) + tok.encode(template.end_of_turn)
        if role == "assistant" and IMAGE_TOKEN in text:
            raise UserError("an assistant reply cannot contain <image>")
        ids += head + body
        resp += [False] * len(head) + [role == "assistant"] * len(body)
    out_ids: list[int] = []
    out_resp: list[bool] = []
    for i, r in zip(ids, resp):
        n = tokens_per_image if i == tok.image_id else 1
        out_ids += [i] * n
        out_resp += [r] * n
    return out_ids, out_resp


def render_prompt(template: ChatTemplate, prompt: str, system: str | None = None) -> str:
    """The text of a one-turn generation prompt, as LLaDA's chat template renders it (``bos`` once, every message
    ``header + content.strip() + end_of_turn``, then the assistant header). ``system`` replaces the template's
    system message ("" drops it)."""
    system = template.system if system is None else system
    text = template.bos
    if system:
        text += template.system_prefix + system.strip() + template.end_of_turn
    return text + template.user + prompt.strip() + template.end_of_turn + template.assistant


def llava_image_tokens(tok: Tokenizer, text: str) -> list[int]:
    """LLaDA-V's ``tokenizer_image_token`` (``llava/mm_utils.py``): the text is split at ``<image>``, each chunk is
    tokenized as ``tokenizer(chunk).input_ids``; when the first chunk starts with the BOS id, that BOS is kept
    once and the *first id of every later chunk is dropped* (meant for tokenizers that add a BOS to each chunk;
    LLaDA's adds none, so the newline of ``"<image>\nDescribe ..."`` is dropped). Each ``<image>`` is one
    ``image_id``."""
    chunks = [tok.encode_text(c) for c in text.split(IMAGE_TOKEN)]
    bos = getattr(tok, "bos_id", None)
    offset = 1 if chunks[0] and bos is not None and chunks[0][0] == bos else 0
    ids = chunks[0][:offset]
    for k, chunk in enumerate(chunks):
        if k:
            ids.append(tok.image_id)
        ids.extend(chunk[offset:])
    return ids


def encode_prompt(tok: Tokenizer, template: ChatTemplate, prompt: str,
                  tokens_per_image: int | Sequence[int], system: str | None = None) -> list[int]:
    """A one-turn generation prompt (everything up to and including the assistant header), each ``<image>``
    expanded to its image's number of features (an int for all, or one count per image)."""
    if template.llava_image_tokens:
        ids = llava_image_tokens(tok, render_prompt(template, prompt, system))
    else:
        system = template.system if system is None else system
        text = template.bos + (template.system_prefix + system + template.end_of_turn if system else "")
        ids = tok.encode(text) + tok.encode(template.user) + tok.encode(prompt)
        ids += tok.encode(template.end_of_turn) + tok.encode(template.assistant)
    return expand_image_tokens(ids, tok.image_id, tokens_per_image)


def pad_batch(rows: list[tuple[list[int], list[bool]]], pad_id: int, length: int | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with ``pad_id`` (LLaDA pads with EOS) marked as response -> ids [B, L], is_response [B, L]."""
    L = length or max(len(r[0]) for r in rows)
    if any(len(r[0]) > L for r in rows):
        raise UserError(f"a conversation of {max(len(r[0]) for r in rows)} tokens exceeds max_len={L}")
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)  # [B, L]
    resp = torch.ones(len(rows), L, dtype=torch.bool)  # [B, L]
    for b, (i, r) in enumerate(rows):
        ids[b, : len(i)] = torch.tensor(i, dtype=torch.long)
        resp[b, : len(r)] = torch.tensor(r, dtype=torch.bool)
    return ids, resp
