"""Property-based tests of ``generate()``'s arguments (hypothesis).

For any combination of the sampler arguments, ``generate`` either returns [B, P + gen_length] ids that keep the
prompt and leave no mask in the generated part, or raises ``UserError``; never another exception. Whether a
combination is valid is decided here independently of the implementation (the rules of the ``generate`` docstring).
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from maskzoo.core.errors import UserError
from maskzoo.core.sampling import SAMPLERS, generate

V, MASK = 7, 6
REMASKING = sorted(SAMPLERS)


class Table(torch.nn.Module):
    """A deterministic toy denoiser that never predicts the mask."""

    mask_id = MASK

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.randn(V, 64, V, generator=torch.Generator().manual_seed(0))
        self.table[..., MASK] = -1e4

    def forward(self, ids, attention_mask=None):
        pos = torch.arange(ids.shape[1])
        return self.table[torch.roll(ids, 1, dims=1), pos] + 0.5 * self.table[ids, pos]  # [B, L, V]


MODEL = Table()

odd_ints = st.one_of(st.integers(-3, 24), st.just(True), st.floats(-2, 10), st.just("4"), st.none())
odd_reals = st.one_of(
    st.floats(-2, 5), st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")), st.just("1"),
    st.integers(-2, 3),
)


def _is_int(x: object, low: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def expected_valid(
    remasking, gen_length, steps, block_length, temperature, top_k, top_p, cfg_scale, cache, threshold, factor
) -> bool:
    if cache is not None:
        return False  # the toy model is a plain callable: no key/value cache (and unknown names are refused)
    if threshold is not None and not (_is_real(threshold) and 0 < threshold <= 1):
        return False
    if factor is not None and not (_is_real(factor) and factor > 0):
        return False
    if (threshold is not None or factor is not None) and (
        (threshold is not None and factor is not None) or remasking not in ("low_confidence", "margin")
    ):
        return False
    if remasking not in SAMPLERS or not _is_int(gen_length, 0) or not _is_int(steps, 1):
        return False
    if not _is_real(temperature) or temperature < 0 or not _is_real(cfg_scale) or cfg_scale < 0:
        return False
    if top_k is not None and not _is_int(top_k, 1):
        return False
    if top_p is not None and not (_is_real(top_p) and 0 < top_p <= 1):
        return False
    if gen_length == 0:
        return True
    block = gen_length if block_length is None else block_length
    if not _is_int(block, 1) or gen_length % block:
        return False
    if steps % (gen_length // block):
        return False
    return remasking != "first_hitting" or steps == gen_length


@st.composite
def lengths(draw):
    """(gen_length, steps, block_length): consistent three times out of four, anything otherwise."""
    if draw(st.integers(0, 3)) == 0:
        return draw(odd_ints), draw(odd_ints), draw(odd_ints)
    block, blocks, per_block = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    gen = block * blocks
    return gen, blocks * per_block, draw(st.sampled_from([block, None if blocks == 1 else block]))


def maybe_odd(good, odd=odd_reals):
    """``good`` seven times out of eight, ``odd`` otherwise (one_of alone leans towards its last branches)."""
    return st.integers(0, 7).flatmap(lambda i: odd if i == 0 else good)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    remasking=maybe_odd(st.sampled_from(REMASKING), st.just("nope")),
    sizes=lengths(),
    temperature=maybe_odd(st.sampled_from([0.0, 0.0, 0.7, 1.0])),
    top_k=maybe_odd(st.one_of(st.none(), st.integers(1, 9)), st.sampled_from([0, -1, 2.0, True])),
    top_p=maybe_odd(st.one_of(st.none(), st.floats(0.05, 1.0))),
    cfg_scale=maybe_odd(st.sampled_from([0.0, 1.0])),
    fast=st.integers(0, 7).flatmap(
        lambda i: st.just((None, None, None)) if i < 4
        else st.tuples(st.none(), st.floats(0.05, 1.0), st.none()) if i == 4
        else st.tuples(st.none(), st.none(), st.floats(0.1, 4.0)) if i == 5
        else st.tuples(st.sampled_from([None, "prefix", "dual", "full", 3]), st.one_of(st.none(), odd_reals),
                       st.one_of(st.none(), odd_reals))
    ),
    batch=st.integers(1, 3),
    prompt_len=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_generate_valid_settings_run_and_invalid_ones_raise_user_error(
    remasking, sizes, temperature, top_k, top_p, cfg_scale, fast, batch, prompt_len, seed
):
    gen_length, steps, block_length = sizes
    cache, threshold, factor = fast
    prompt = torch.randint(0, MASK, (batch, prompt_len), generator=torch.Generator().manual_seed(seed))
    args = (remasking, gen_length, steps, block_length, temperature, top_k, top_p, cfg_scale, cache, threshold, factor)
    valid = expected_valid(*args)
    event("valid" if valid else "invalid")
    try:
        out = generate(
            MODEL, prompt, gen_length=gen_length, steps=steps, block_length=block_length, temperature=temperature,
            remasking=remasking, top_k=top_k, top_p=top_p, cfg_scale=cfg_scale, cache=cache, threshold=threshold,
            factor=factor,
            generator=torch.Generator().manual_seed(seed),
        )
    except UserError as err:
        assert not valid, f"valid settings {args} raised UserError: {err}"
        assert "\n" not in str(err)
        return
    assert valid, f"invalid settings {args} were accepted"
    assert out.shape == (batch, prompt_len + gen_length)
    assert torch.equal(out[:, :prompt_len], prompt)
    assert not bool((out == MASK).any())
