"""The audio-language masked-diffusion model: encoder -> adapters -> ``inputs_embeds`` of a DiffusionTransformer.

DIFFA (Zhou et al. 2025, arXiv 2507.18452) and Whisper-LLaDA (Liu et al. 2025, arXiv 2509.16622) on a frozen
encoder and a frozen LLaDA-architecture LM:

    F  = featurize(waveform)                 [B, n_mels, 2N]   Whisper log-mel (or raw audio for wav2vec2)
    h, (h_0..h_L) = encoder(F)               [B, N, d]
    A  = [ S ; Q_ac(h_taps) ; Sem(h) ; Win(h) ]   [B, A, D]    soft prompts (DIFFA stage 1), acoustic Q-Former,
                                                               semantic adapter, window Q-Former (each optional)
    E  = embed(x_t);  E[<audio> positions] = A                 the prompt holds A <audio> placeholders after
                                                               "this is the audio:" (DIFFA's marker)
    logits = LM(inputs_embeds=E)             [B, L, V]         p_theta(x_0 | x_t, audio)

Placeholders are prompt, never masked, so the sampler splices the same A into every forward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from maskzoo.audio.adapters import AcousticQFormer, SemanticAdapter, WindowQFormer, apply_lora
from maskzoo.audio.encoders import build_encoder
from maskzoo.audio.tokenizer import WordTokenizer
from maskzoo.core.errors import UserError
from maskzoo.core.sampling.model_io import LanguageModelFacts
from maskzoo.core.transformer import DiffusionTransformer, TransformerConfig

ADAPTERS = ("soft_prompts", "acoustic", "semantic", "window")


@dataclass
class AudioModelConfig(LanguageModelFacts):
    """Everything that defines an audio-language model (saved in its checkpoint).

    ``lm``: :class:`TransformerConfig` fields; ``encoder``: ``{"family": "whisper" | "wav2vec2" | "hubert",
    ...fields}``; ``n_soft_prompts``: learnable prompt vectors before the audio (DIFFA stage 1, 0 = none);
    ``acoustic``: :class:`AcousticQFormer` kwargs or None; ``semantic``: use the semantic adapter;
    ``window``: :class:`WindowQFormer` kwargs or None; ``lora``: ``{"rank", "alpha"}`` on the LM's q/k/v or None;
    ``tokenizer``: :meth:`WordTokenizer.to_dict`; ``gen_length`` / ``steps``: default answer length and steps.
    """

    lm: dict[str, Any]
    encoder: dict[str, Any]
    n_soft_prompts: int = 0
    acoustic: dict[str, Any] | None = None
    semantic: bool = True
    window: dict[str, Any] | None = None
    lora: dict[str, Any] | None = None
    tokenizer: dict[str, Any] = field(default_factory=dict)
    gen_length: int = 8
    steps: int = 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioModelConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"audio model config: unknown key(s) {unknown}")
        if "lm" not in d or "encoder" not in d:
            raise UserError("audio model config: needs 'lm' and 'encoder'")
        return cls(**d)


class AudioLanguageModel(nn.Module):
    """``forward(input_ids, audio_embeds | waveforms, attention_mask) -> logits [B, L, V]``."""

    def __init__(self, config: AudioModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lm = DiffusionTransformer(TransformerConfig.from_dict(dict(config.lm)))
        self.encoder = build_encoder(dict(config.encoder))
        self.tokenizer = WordTokenizer.from_dict(config.tokenizer) if config.tokenizer else None
        d, big_d = self.encoder.out_dim, self.lm.config.d_model
        self.soft_prompts = nn.Parameter(torch.zeros(config.n_soft_prompts, big_d)) if config.n_soft_prompts else None
        self.acoustic = AcousticQFormer(d, big_d, **config.acoustic) if config.acoustic else None
        self.semantic = SemanticAdapter(d, big_d) if config.semantic else None
        self.window = WindowQFormer(d, big_d, **config.window) if config.window else None
        if self.acoustic is None and self.semantic is None and self.window is None:
            raise UserError("audio model config: enable at least one of acoustic, semantic, window")
        if config.lora:
            apply_lora(self.lm, rank=int(config.lora.get("rank", 8)), alpha=float(config.lora.get("alpha", 16)))
        if self.tokenizer is not None and len(self.tokenizer) != self.lm.config.vocab_size:
            raise UserError(f"tokenizer has {len(self.tokenizer)} words, the LM {self.lm.config.vocab_size}")
        self.set_trainable(())

    # ------------------------------------------------------------------ facts
    @property
    def mask_id(self) -> int:
        return self.lm.mask_id

    @property
    def audio_token_id(self) -> int:
        if self.tokenizer is None:
            raise UserError("this audio model has no tokenizer")
        return self.tokenizer.audio_id

    @property
    def window_samples(self) -> int:
        """16 kHz samples of one encoder window; longer audio is split into windows of this size."""
        return self.encoder.window_samples

    @property
    def num_audio_tokens(self) -> int:
        """Placeholder positions one window of audio occupies in the prompt."""
        n = self.encoder.num_positions
        return ((self.soft_prompts.shape[0] if self.soft_prompts is not None else 0)
                + (self.acoustic.num_tokens if self.acoustic is not None else 0)
                + (self.semantic.num_tokens(n) if self.semantic is not None else 0)
                + (self.window.num_tokens(n) if self.window is not None else 0))

    def semantic_slice(self) -> slice:
        """Where the semantic adapter's tokens sit in the audio run of :meth:`encode_audio` (after the soft
        prompts and the acoustic queries)."""
        if self.semantic is None:
            raise UserError("this audio model has no semantic adapter")
        start = ((self.soft_prompts.shape[0] if self.soft_prompts is not None else 0)
                 + (self.acoustic.num_tokens if self.acoustic is not None else 0))
        return slice(start, start + self.semantic.num_tokens(self.encoder.num_positions))

    def set_trainable(self, parts: tuple[str, ...] | list[str]) -> None:
        """Train exactly ``parts`` (names in ``ADAPTERS`` and ``lora``); the encoder and the LM stay frozen."""
        unknown = sorted(set(parts) - {*ADAPTERS, "lora"})
        if unknown:
            raise UserError(f"unknown trainable part(s) {unknown}; choose from {[*ADAPTERS, 'lora']}")
        for p in self.parameters():
            p.requires_grad_(False)
        for name in parts:
            if name == "lora":
                for pname, p in self.lm.named_parameters():
                    if "lora_" in pname:
                        p.requires_grad_(True)
                continue
            part = getattr(self, name)
            if part is None:
                raise UserError(f"cannot train {name!r}: this model has none")
            for p in [part] if isinstance(part, nn.Parameter) else part.parameters():
                p.requires_grad_(True)

    def train(self, mode: bool = True) -> AudioLanguageModel:
        """The frozen encoder and LM stay in eval mode."""
        super().train(mode)
        self.encoder.eval()
        self.lm.eval()
        return self

    # ------------------------------------------------------------------ audio
    def encode_audio(self, waveforms: torch.Tensor) -> torch.Tensor:
        """16 kHz waveforms ``[B, S]`` (S <= window_samples) -> audio embeddings ``[B, A, D]``."""
        feats = self.encoder.featurize(waveforms)  # [B, n_mels, 2N] (Whisper) or [B, S] (wav2vec2)
        with torch.no_grad():
            last, states = self.encoder(feats, output_hidden_states=True)  # [B, N, d], L + 1 x [B, N, d]
        b = last.shape[0]
        parts = []
        if self.soft_prompts is not None:
            parts.append(self.soft_prompts.expand(b, -1, -1))  # [B, P, D]
        if self.acoustic is not None:
            parts.append(self.acoustic(states))  # [B, Q, D]
        if self.semantic is not None:
            parts.append(self.semantic(last))  # [B, N/4, D]
        if self.window is not None:
            parts.append(self.window(last))  # [B, N/w q, D]
        return torch.cat(parts, dim=1)  # [B, A, D]

    def embed(self, input_ids: torch.Tensor, audio_embeds: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``[B, L, D]`` with row b's ``<audio>`` run replaced by ``audio_embeds[b]``."""
        is_audio = input_ids == self.audio_token_id  # [B, L]
        n = audio_embeds.shape[1]
        if not bool((is_audio.sum(dim=1) == n).all()):
            raise UserError(f"every prompt needs exactly {n} <audio> placeholders "
                            f"(got {is_audio.sum(dim=1).tolist()})")
        emb = self.lm.embed_tokens(input_ids)  # [B, L, D]
        return emb.masked_scatter(is_audio[..., None], audio_embeds.to(emb.dtype))  # [B, L, D]

    def forward(self, input_ids: torch.Tensor, audio_embeds: torch.Tensor | None = None,
                waveforms: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, L, V]``; the audio comes as ``audio_embeds`` [B, A, D] or ``waveforms`` [B, S]. With
        neither, ``input_ids`` must hold no ``<audio>`` placeholder and the frozen text LM runs alone (the zoo's
        ``model(ids)`` contract)."""
        if audio_embeds is not None and waveforms is not None:
            raise ValueError("give one of audio_embeds and waveforms, not both")
        if audio_embeds is None and waveforms is None:
            if bool((input_ids == self.audio_token_id).any()):
                raise UserError("these ids hold <audio> placeholders: pass waveforms= or audio_embeds=")
            return self.lm(input_ids, attention_mask=attention_mask)
        if audio_embeds is None:
            audio_embeds = self.encode_audio(waveforms)  # [B, A, D]
        return self.lm(inputs_embeds=self.embed(input_ids, audio_embeds), attention_mask=attention_mask)

    def denoiser(self, audio_embeds: torch.Tensor):
        """``ids [B, L] -> logits`` for :func:`maskzoo.core.generate`, splicing the same audio every step."""

        def fn(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return self(input_ids, audio_embeds=audio_embeds, attention_mask=attention_mask)

        fn.mask_id = self.mask_id  # type: ignore[attr-defined]
        fn.vocab_size = self.lm.config.vocab_size  # type: ignore[attr-defined]
        fn.max_seq_len = self.lm.config.max_seq_len  # type: ignore[attr-defined]
        return fn

    def init_output_scale(self) -> None:
        """Start every adapter's output at the RMS of the LM's token embeddings, so the frozen LM sees audio
        vectors of the size it was trained on (an adapter ending in LayerNorm otherwise emits RMS ~1)."""
        rms = self.lm.embed.weight.detach().pow(2).mean().sqrt()
        with torch.no_grad():
            if self.semantic is not None:
                self.semantic.norm.weight.fill_(float(rms))  # LayerNorm output RMS = its weight
            for qf in (self.acoustic, self.window):
                if qf is not None:  # LayerNorm -> Linear: a default Linear emits RMS ~0.6 on unit inputs
                    qf.proj[1].weight.mul_(float(rms) / 0.6)
                    qf.proj[1].bias.mul_(float(rms) / 0.6)
            if self.soft_prompts is not None:
                sil = self.lm.embed.weight[self.tokenizer.sil_id] if self.tokenizer is not None else None
                if sil is not None:
                    self.soft_prompts.copy_(sil.expand_as(self.soft_prompts))


def register() -> None:
    """Put the architecture on the core checkpoint allow-list (so ``maskzoo.core.load_model`` loads it)."""
    from maskzoo.core.checkpoint import ARCHITECTURES, register_architecture

    if "AudioLanguageModel" not in ARCHITECTURES:
        register_architecture("AudioLanguageModel", AudioLanguageModel, AudioModelConfig)


register()
