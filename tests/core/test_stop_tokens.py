"""generate(stop_tokens=...): LLaDA-V's stopping criteria, checked on a scripted denoiser with known confidences."""

from __future__ import annotations

import pytest
import torch

from maskzoo.core import generate
from maskzoo.core.errors import UserError

V, MASK, STOP = 8, 7, 6
# per generated position (prompt length 2, gen 8): preferred token and its logit (higher = more confident)
PLAN_STOP = {2: (1, 3.0), 3: (STOP, 9.0), 4: (2, 5.0), 5: (3, 7.0), 6: (4, 2.0), 7: (4, 2.0), 8: (4, 2.0), 9: (4, 2.0)}
PLAN_PLAIN = {**PLAN_STOP, 3: (5, 9.0)}  # the same confidences, no stop token anywhere


class Scripted:
    """ids [B, L] -> logits [B, L, V]; row b follows PLAN_STOP when its first prompt token is 0, else PLAN_PLAIN."""

    mask_id = MASK

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = torch.zeros(*ids.shape, V)  # [B, L, V]
        for b in range(ids.shape[0]):
            plan = PLAN_STOP if int(ids[b, 0]) == 0 else PLAN_PLAIN
            for p, (tok, strength) in plan.items():
                logits[b, p, tok] = strength
        return logits


def _run(prompt: list[list[int]], **kw) -> tuple[torch.Tensor, int]:
    model = Scripted()
    out = generate(model, torch.tensor(prompt), gen_length=8, steps=8, block_length=4, **kw)
    return out, model.calls


def test_after_a_stop_only_positions_before_it_are_revealed_and_later_blocks_are_skipped():
    plain, plain_calls = _run([[0, 0]])
    assert plain[0, 2:6].tolist() == [1, STOP, 2, 3] and plain_calls == 8  # every position, one per step
    out, calls = _run([[0, 0]], stop_tokens=[STOP])
    # step 1 reveals the stop at 3 (most confident); step 2 may only take position 2; then the answer is complete
    assert calls == 2
    assert out[0].tolist() == [0, 0, 1] + [STOP] * 7  # cut at the stop: everything from it is the stop token


def test_rows_stop_on_their_own_and_equal_their_runs_alone():
    both, _ = _run([[0, 0], [1, 0]], stop_tokens=[STOP])
    alone0, _ = _run([[0, 0]], stop_tokens=[STOP])
    alone1, _ = _run([[1, 0]], stop_tokens=[STOP])
    assert torch.equal(both[0], alone0[0]) and torch.equal(both[1], alone1[0])
    plain1, _ = _run([[1, 0]])
    assert torch.equal(alone1, plain1)  # a row that never reveals a stop decodes exactly as without stop_tokens


def test_stop_tokens_are_refused_where_the_sampler_cannot_honour_them():
    with pytest.raises(UserError, match="stop_tokens work with the confidence samplers"):
        _run([[0, 0]], stop_tokens=[STOP], remasking="ancestral")
    with pytest.raises(UserError, match="stop_tokens contain id"):
        _run([[0, 0]], stop_tokens=[-1])
