"""Sequence representations from a DSM / ESM-2 model: per-sequence means and per-residue vectors.

For a sequence of n residues encoded ``[<cls>, r_1 .. r_n, <eos>]`` and the hidden states ``h`` [n + 2, D] of a
layer (default: the final, layer-normed one), the mean representation is ``(1/n) sum_{i=1..n} h_i`` (special
tokens excluded, as in fair-esm's ``extract.py --include mean``); per-residue vectors are ``h_1 .. h_n``. No token
is masked: representations are read from the clean sequence (the t = 0 end of the diffusion).

Output files hold ``ids`` (record ids), ``mean`` [N, D] and, when asked, ``per_residue`` [sum n, D] with
``offsets`` [N + 1] (record k is ``per_residue[offsets[k]:offsets[k+1]]``):

* ``.pt``: a dict of those (loadable with ``torch.load(weights_only=True)``);
* ``.safetensors``: the tensors, ids in the metadata as JSON;
* ``.npz``: numpy arrays (ids as a unicode array; no pickling needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.batching import token_budget_batches


@dataclass
class Embeddings:
    ids: list[str]
    mean: torch.Tensor  # [N, D]
    per_residue: torch.Tensor | None = None  # [sum n, D]
    offsets: torch.Tensor | None = None  # [N + 1]

    def residues(self, k: int) -> torch.Tensor:
        """Per-residue vectors of record ``k``: [n_k, D]."""
        if self.per_residue is None or self.offsets is None:
            raise ValueError("per-residue representations were not computed")
        return self.per_residue[self.offsets[k] : self.offsets[k + 1]]


def check_lengths(model: torch.nn.Module, names: Sequence[str], seqs: Sequence[str], extra: int = 2) -> None:
    """UserError naming the first record longer than the model's context (``extra`` special tokens added)."""
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    if limit is None:
        return
    for name, s in zip(names, seqs):
        if len(s) + extra > limit:
            raise UserError(
                f"record '{name}': {len(s)} residues is longer than the model's context of {limit - extra} residues"
            )


@torch.no_grad()
def embed_sequences(
    model: torch.nn.Module,
    seqs: Sequence[str],
    names: Sequence[str] | None = None,
    layer: int | None = None,
    per_residue: bool = False,
    max_tokens: int = 8192,
    progress: Callable[[int], None] | None = None,
) -> Embeddings:
    """Embed residue strings (validated) in token-budget batches; ``layer`` None = the final representation."""
    alphabet = get_alphabet()
    names = list(names) if names is not None else [f"seq{i}" for i in range(len(seqs))]
    seqs = [alphabet.validate(s, f"record '{n}'") for n, s in zip(names, seqs)]
    check_lengths(model, names, seqs)
    n_layers = model.config.num_layers
    layer = n_layers if layer is None else layer
    if not 0 <= layer <= n_layers:
        raise UserError(f"--layer {layer}: the model has layers 0..{n_layers}")
    device = next(model.parameters()).device
    means: list[torch.Tensor | None] = [None] * len(seqs)
    per: list[torch.Tensor | None] = [None] * len(seqs)
    for batch in token_budget_batches([len(s) + 2 for s in seqs], max_tokens):
        ids = alphabet.batch([alphabet.encode(seqs[i]) for i in batch]).to(device)  # [b, L]
        final, reps = model.hidden_states(ids, repr_layers=(layer,))
        h = reps.get(layer, final).float().cpu()  # [b, L, D]
        for row, i in enumerate(batch):
            n = len(seqs[i])
            res = h[row, 1 : n + 1]  # [n, D]
            means[i] = res.mean(0)
            if per_residue:
                per[i] = res.clone()
        if progress is not None:
            progress(len(batch))
    mean = torch.stack(means)  # [N, D]
    if not per_residue:
        return Embeddings(names, mean)
    offsets = torch.tensor([0] + [len(s) for s in seqs]).cumsum(0)  # [N + 1]
    return Embeddings(names, mean, torch.cat(per), offsets)  # type: ignore[arg-type]


def _save_pt(e: Embeddings, f) -> None:
    data: dict = {"ids": e.ids, "mean": e.mean}
    if e.per_residue is not None:
        data["per_residue"], data["offsets"] = e.per_residue, e.offsets
    torch.save(data, f)


def _save_safetensors(e: Embeddings, f) -> None:
    from safetensors.torch import save

    tensors = {"mean": e.mean.contiguous()}
    if e.per_residue is not None:
        tensors["per_residue"], tensors["offsets"] = e.per_residue.contiguous(), e.offsets.contiguous()
    f.write(save(tensors, metadata={"ids": json.dumps(e.ids)}))


def _save_npz(e: Embeddings, f) -> None:
    import numpy as np

    arrays = {"ids": np.array(e.ids, dtype=str), "mean": e.mean.numpy()}
    if e.per_residue is not None:
        arrays["per_residue"], arrays["offsets"] = e.per_residue.numpy(), e.offsets.numpy()
    np.savez(f, **arrays)


WRITERS: dict[str, Callable] = {".pt": _save_pt, ".safetensors": _save_safetensors, ".npz": _save_npz}


def save_embeddings(e: Embeddings, path: str | Path) -> Path:
    """Write ``e`` atomically; the format follows the extension (.pt, .safetensors, .npz)."""
    path = Path(path)
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise UserError(f"--out {path}: unknown extension; use one of {', '.join(WRITERS)}")
    with atomic_open(path, "wb") as f:
        writer(e, f)
    return path


def load_embeddings(path: str | Path) -> Embeddings:
    """Read a file written by :func:`save_embeddings` (no pickling)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".pt":
        d = torch.load(path, weights_only=True)
        return Embeddings(list(d["ids"]), d["mean"], d.get("per_residue"), d.get("offsets"))
    if ext == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            ids = json.loads(f.metadata()["ids"])
            t = {k: f.get_tensor(k) for k in f.keys()}
        return Embeddings(ids, t["mean"], t.get("per_residue"), t.get("offsets"))
    if ext == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            per = torch.from_numpy(z["per_residue"]) if "per_residue" in z else None
            off = torch.from_numpy(z["offsets"]) if "offsets" in z else None
            return Embeddings([str(x) for x in z["ids"]], torch.from_numpy(z["mean"]), per, off)
    raise UserError(f"{path}: unknown embeddings format")
