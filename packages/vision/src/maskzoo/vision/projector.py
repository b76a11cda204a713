"""Projectors: the cross-modal adapter from vision features (dim C) to the language model's embeddings (dim D).

* ``linear``:      h = W x + b                                     (LLaVA, Liu et al. 2023)
* ``mlp2x_gelu``:  h = W2 GELU(W1 x + b1) + b2                     (LLaVA-1.5, Liu et al. 2024; LLaDA-V)
* ``mlp{k}x_gelu``: k Linear layers with GELU between them.

Parameter names follow LLaVA / LLaDA-V's ``mm_projector``: ``weight``/``bias`` for ``linear`` (a bare
``nn.Linear``), ``0.weight``, ``2.weight`` ... for the MLPs (an ``nn.Sequential``; checkpoint key
``model.mm_projector.0.weight``).
"""

from __future__ import annotations

import re

from torch import nn

from maskzoo.core.errors import UserError

_MLP = re.compile(r"^mlp(\d+)x_gelu$")


def _linear(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim)


def _mlp(depth: int):
    def build(in_dim: int, out_dim: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
        return nn.Sequential(*layers)

    return build


PROJECTORS = {"linear": _linear, "mlp2x_gelu": _mlp(2)}


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """``kind`` in PROJECTORS, or any ``mlp{k}x_gelu``; [.., C] -> [.., D]."""
    if kind in PROJECTORS:
        return PROJECTORS[kind](in_dim, out_dim)
    m = _MLP.match(kind)
    if m and int(m.group(1)) >= 1:
        return _mlp(int(m.group(1)))(in_dim, out_dim)
    raise UserError(f"unknown projector {kind!r}; choose linear or mlp<k>x_gelu (LLaDA-V: mlp2x_gelu)")
