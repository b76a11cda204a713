"""Diffusion deliberation (Whisper-LLaDA, Liu et al. 2025, arXiv 2509.16622, sec. 3.3): refine an external
ASR hypothesis instead of decoding from an all-masked answer.

    x      = prompt + hypothesis (<eos>-padded to the answer length G)
    c_i    = p_theta(x_i | x, audio)                      one forward: the model's confidence in each token
    mask the ceil(r G) least confident answer tokens      (r = 0.3)
    re-decode the masked tokens semi-autoregressively over ``chunks`` (4) equal chunks of the answer: within a
    chunk, at each step reveal the masked token the model is most confident about (LLaDA's low-confidence rule
    restricted to the re-masked positions), greedy.

Tokens kept from the hypothesis never change; the answer is the decoded text up to the first ``<eos>``.
"""

from __future__ import annotations

import math

import torch

from maskzoo.audio.model import AudioLanguageModel
from maskzoo.audio.tasks import TRANSCRIBE, answer_ids, prompt_ids
from maskzoo.core.errors import UserError


@torch.no_grad()
def deliberate(model: AudioLanguageModel, waveform: torch.Tensor, hypothesis: str, remask_ratio: float = 0.3,
               chunks: int = 4, question: str = TRANSCRIBE) -> str:
    """The refined transcript of one window ``waveform [T]`` (16 kHz) given ``hypothesis``."""
    if not 0.0 <= remask_ratio <= 1.0:
        raise UserError(f"remask_ratio must be in [0, 1], got {remask_ratio}")
    tok, gen = model.tokenizer, model.config.gen_length
    if chunks < 1 or gen % chunks:
        raise UserError(f"chunks must divide the answer length {gen}, got {chunks}")
    if waveform.numel() > model.window_samples:
        raise UserError("deliberation works on one window; split the audio first")
    model.eval()
    device = next(model.parameters()).device
    wav = torch.nn.functional.pad(waveform, (0, model.window_samples - waveform.numel()))[None].to(device)
    audio = model.encode_audio(wav)  # [1, S] -> [1, A, D]
    prompt = prompt_ids(tok, question, audio.shape[1])
    x = torch.tensor([prompt + answer_ids(tok, hypothesis, gen)], device=device)  # [1, P + G]
    p = len(prompt)
    logits = model(x, audio_embeds=audio)[0, p:].float()  # [G, V]
    conf = logits.softmax(-1).gather(-1, x[0, p:, None])[:, 0]  # [G]
    k = math.ceil(remask_ratio * gen)
    masked = torch.zeros(gen, dtype=torch.bool, device=device)
    masked[conf.topk(k, largest=False).indices] = True  # [G]
    x[0, p:][masked] = model.mask_id
    size = gen // chunks
    for c in range(chunks):
        while True:
            todo = masked[c * size:(c + 1) * size].nonzero()[:, 0] + c * size  # masked positions of this chunk
            if todo.numel() == 0:
                break
            probs = model(x, audio_embeds=audio)[0, p:].float().softmax(-1)  # [G, V]
            probs[:, model.mask_id] = 0.0
            best, tokens = probs[todo].max(-1)  # [n]
            j = int(best.argmax())
            x[0, p + todo[j]] = tokens[j]
            masked[todo[j]] = False
    return tok.decode(x[0, p:].tolist())
