"""Secondary-structure linear probe: how much 3-state structure (H/E/C) the representations encode.

Per-residue representations ``h_i`` (final layer, clean input) of the packaged PDB chains are standardised with
training-set statistics and fed to a multinomial logistic regression ``softmax(W h_i + b)`` fitted with L-BFGS on
the cross-entropy plus ``weight_decay * ||W||^2``. The score is Q3, the fraction of validation residues whose
label is predicted correctly (the standard secondary-structure accuracy; Rao et al. 2019, TAPE; FLIP, Dallago et
al. 2021, whose split is packaged here). Two baselines put it in context: the majority class, and the same probe on
a one-hot encoding of the residue and its +-3 neighbours (what sequence alone gives a linear model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from maskzoo.core.errors import UserError

DATA_DIR = Path(__file__).parent / "data"
LABELS = "HEC"


@dataclass
class ProbeData:
    seqs: list[str]
    labels: list[torch.Tensor]  # each [n] long in 0..2


def load_ss3(split: str, limit: int | None = None, max_len: int | None = None) -> ProbeData:
    """Packaged chains of ``split`` (train / valid) with their H/E/C labels (chains longer than ``max_len`` cut)."""
    from maskzoo.protein.fasta import read_fasta

    seqs = read_fasta(DATA_DIR / f"pdb_{split}.fasta", validate=False)
    labs = read_fasta(DATA_DIR / f"pdb_{split}_ss3.fasta", validate=False)
    if [r.id for r in seqs] != [r.id for r in labs]:
        raise UserError(f"pdb_{split}.fasta and pdb_{split}_ss3.fasta do not list the same records")
    table = {c: i for i, c in enumerate(LABELS)}
    out = ProbeData([], [])
    for s, lab in zip(seqs[:limit] if limit else seqs, labs[:limit] if limit else labs):
        if len(s.seq) != len(lab.seq):
            raise UserError(f"record '{s.id}': {len(s.seq)} residues but {len(lab.seq)} labels")
        n = min(len(s.seq), max_len) if max_len else len(s.seq)
        out.seqs.append(s.seq[:n])
        out.labels.append(torch.tensor([table[c] for c in lab.seq[:n]]))
    return out


def fit_linear_probe(
    x_train: torch.Tensor, y_train: torch.Tensor, weight_decay: float = 1e-3, max_iter: int = 100
) -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    """Standardise and fit softmax regression with L-BFGS; returns (layer, mean, std)."""
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    z = (x_train - mean) / std  # [N, D]
    layer = torch.nn.Linear(z.shape[1], len(LABELS))
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(z), y_train) + weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return layer, mean, std


def q3(
    layer: torch.nn.Linear, mean: torch.Tensor, std: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> float:
    with torch.no_grad():
        return float((layer((x - mean) / std).argmax(-1) == y).float().mean())


def one_hot_window(seqs: list[str], radius: int = 3) -> torch.Tensor:
    """[sum n, 21 (2 radius + 1)]: one-hot residues (20 canonical + other/off-end) in a window around each residue."""
    from maskzoo.protein.metrics import encode

    rows = []
    for s in seqs:
        c = torch.from_numpy(encode(s)).long()
        c = torch.where(c < 0, torch.full_like(c, 20), c)
        padded = torch.cat([torch.full((radius,), 20), c, torch.full((radius,), 20)])
        win = padded.unfold(0, 2 * radius + 1, 1)  # [n, 2r+1]
        rows.append(torch.nn.functional.one_hot(win, 21).flatten(1).float())
    return torch.cat(rows)


def run_probe(
    model: torch.nn.Module, n_train: int = 400, n_valid: int = 200, max_tokens: int = 8192, seed: int = 0
) -> dict[str, float]:
    """Q3 of the embedding probe, the one-hot window probe and the majority class on packaged PDB chains."""
    from maskzoo.protein.embed import embed_sequences

    torch.manual_seed(seed)
    max_len = model.config.max_seq_len - 2
    train, valid = load_ss3("train", n_train, max_len), load_ss3("valid", n_valid, max_len)
    y_tr, y_va = torch.cat(train.labels), torch.cat(valid.labels)
    e_tr = embed_sequences(model, train.seqs, per_residue=True, max_tokens=max_tokens).per_residue
    e_va = embed_sequences(model, valid.seqs, per_residue=True, max_tokens=max_tokens).per_residue
    probe = fit_linear_probe(e_tr, y_tr)
    onehot = fit_linear_probe(one_hot_window(train.seqs), y_tr)
    majority = int(torch.bincount(y_tr, minlength=3).argmax())
    return {
        "q3_embedding_probe": q3(*probe, e_va, y_va),
        "q3_onehot_window_probe": q3(*onehot, one_hot_window(valid.seqs), y_va),
        "q3_majority_class": float((y_va == majority).float().mean()),
        "train_residues": int(len(y_tr)),
        "valid_residues": int(len(y_va)),
    }
