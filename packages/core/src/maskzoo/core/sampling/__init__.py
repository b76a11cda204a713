"""Masked-diffusion sampling: one :func:`generate` and its parts.

- :mod:`.counts` how many tokens to reveal per step; block spans
- :mod:`.confidence` which ones (probability, margin, entropy, random) and the exact per-row top-k
- :mod:`.draw` how to draw a token (greedy, float64 Gumbel temperature, top-k, top-p)
- :mod:`.remasking` LLaDA's semi-autoregressive remasking loop
- :mod:`.first_hitting` the first-hitting sampler; :mod:`.ancestral` MDLM/MD4 ancestral sampling with caching
- :mod:`.parallel` adaptive tokens per step (Fast-dLLM threshold and factor rules); :mod:`.dilated` DUS;
  :mod:`.remdm` ReMDM remasking; :mod:`.caches` prefix and dual key/value caches per block
- :mod:`.model_io` model calls, padding masks, classifier-free guidance; :mod:`.prompts` prompt batching
- :mod:`.stopping` EOS stopping and trimming
- :mod:`.api` the public :func:`generate` (validation, prompt batching, blocks, dispatch by name)
"""

from .api import SAMPLERS, generate
from .confidence import CONFIDENCE_RULES, topk_per_row
from .counts import transfer_counts
from .dilated import DilatedSampler
from .draw import TokenDraw, gumbel_argmax, top_k_filter, top_p_filter
from .parallel import Factor, ParallelSampler, Threshold
from .remdm import ReMDMSampler

__all__ = [
    "CONFIDENCE_RULES",
    "SAMPLERS",
    "DilatedSampler",
    "Factor",
    "ParallelSampler",
    "ReMDMSampler",
    "Threshold",
    "TokenDraw",
    "generate",
    "gumbel_argmax",
    "top_k_filter",
    "top_p_filter",
    "topk_per_row",
    "transfer_counts",
]
