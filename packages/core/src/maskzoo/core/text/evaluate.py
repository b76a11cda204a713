"""Validation bits per character.

For a masked-diffusion model the number is the continuous-time NELBO (an upper bound on the negative
log-likelihood; MDLM, Sahoo et al. 2024, eq. 10) estimated with antithetic times by
:func:`maskzoo.core.likelihood.elbo_bits_per_token`. For a causal (autoregressive) model it is the exact
next-token negative log-likelihood; the first character of each window, which has no context, is not scored.
"""

from __future__ import annotations

from pathlib import Path

import torch

from maskzoo.core.text.data import read_text, split_text
from maskzoo.core.text.tokenizer import CharTokenizer


def _windows(ids: torch.Tensor, seq_len: int, max_windows: int) -> torch.Tensor:
    n = min(max_windows, ids.numel() // seq_len)
    return ids[: n * seq_len].view(n, seq_len)  # [n, seq_len], consecutive non-overlapping windows


@torch.no_grad()
def evaluate_bits_per_char_on_ids(model, ids: torch.Tensor, *, seq_len: int = 256, max_windows: int = 64,
                                  num_samples: int = 16, batch_size: int = 16, seed: int = 0, progress: bool = False
                                  ) -> dict[str, float]:
    """Bits per character of ``model`` on consecutive windows of ``ids`` [N] (a progress bar when asked)."""
    from maskzoo.core.errors import UserError
    from maskzoo.core.likelihood import ar_bits_per_token, elbo_bits_per_token
    from maskzoo.core.progress import forward_progress

    device = next(model.parameters()).device
    windows = _windows(ids, seq_len, max_windows).to(device)  # [n, L]
    if windows.shape[0] == 0:
        raise UserError(f"the text has {ids.numel()} characters: fewer than one window of {seq_len}")
    n = windows.shape[0]
    rows = n if model.config.causal else n * num_samples
    with forward_progress(model, rows, desc="evaluating", unit="seq", rows=True, quiet=None if progress else True):
        if model.config.causal:
            r = ar_bits_per_token(model, windows, batch_size=batch_size)
            return {"bits_per_char": r.bits_per_token, "stderr": r.stderr, "bound": "exact", "windows": n}
        gen = torch.Generator(device=device).manual_seed(seed)
        r = elbo_bits_per_token(model, windows, model.mask_id, num_samples=num_samples, generator=gen,
                                batch_size=batch_size)
    return {"bits_per_char": r.bits_per_token, "stderr": r.stderr, "bound": "elbo", "windows": n}


def evaluate_bits_per_char(model, tokenizer: CharTokenizer, *, text_path: str | Path | None = None,
                           seq_len: int = 256, max_windows: int = 64, num_samples: int = 16, batch_size: int = 16,
                           seed: int = 0, progress: bool = False) -> dict[str, float]:
    """Bits per character on the validation split of tinyshakespeare (or all of ``text_path``)."""
    text = read_text(text_path)
    valid = text if text_path is not None else split_text(text)[1]
    ids = tokenizer.encode(valid)
    return evaluate_bits_per_char_on_ids(model, ids, seq_len=seq_len, max_windows=max_windows,
                                         num_samples=num_samples, batch_size=batch_size, seed=seed, progress=progress)
