"""maskzoo-audio: DIFFA-style audio language models (arXiv 2507.18452) and Whisper-LLaDA diffusion ASR
(arXiv 2509.16622) on the maskzoo core.

Whisper's log-mel front end and encoder (Hugging Face compatible), DIFFA's semantic and acoustic adapters,
Whisper-LLaDA's window Q-Former, training of the adapters with the core Trainer (encoder and LM frozen), and
transcription / question answering with the core sampler.
"""

from maskzoo.audio.features import log_mel_spectrogram
from maskzoo.audio.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, load_whisper_encoder

__all__ = ["WhisperEncoder", "WhisperEncoderConfig", "load_whisper_encoder", "log_mel_spectrogram"]
