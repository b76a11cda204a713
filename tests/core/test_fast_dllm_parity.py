"""Fast decoding against Fast-dLLM v1 (NVlabs/Fast-dLLM, commit 24cc59e): tokens and forward-call counts.

The fixture (tests/core/fixtures/fastdllm, see its README) holds a tiny LLaDA-format checkpoint and the outputs of
Fast-dLLM's ``generate``, ``generate_with_prefix_cache`` and ``generate_with_dual_cache`` for two prompts, six
block/step settings and thresholds None / 0.5 / 0.7 / 0.9, with their number of forward calls (``nfe``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from maskzoo.core import load_model
from maskzoo.core.sampling import generate

FIXTURE = Path(__file__).parent / "fixtures" / "fastdllm"
CASES = json.loads((FIXTURE / "fastdllm_cases.json").read_text())
TENSORS = load_file(str(FIXTURE / "fastdllm_outputs.safetensors"))


@pytest.fixture(scope="module")
def model():
    m = load_model(str(FIXTURE / "llada_tiny_sharp")).eval()
    m.calls = 0

    def count(*_):
        m.calls += 1

    m.register_forward_hook(count)
    return m


def _run(model, case, **extra):
    model.calls = 0
    kw = {k: case[k] for k in ("gen_length", "steps", "block_length")}
    out = generate(model, TENSORS[case["prompt"]], temperature=0.0, remasking="low_confidence",
                   cache=case["cache"], threshold=case["threshold"], **kw, **extra)
    return out, model.calls


def _reference_budget(case) -> bool:
    """Threshold cases whose ``steps`` per block is at least the block length: ``steps`` cannot bind."""
    return case["threshold"] is None or case["steps"] // (case["gen_length"] // case["block_length"]) >= case[
        "block_length"
    ]


PARITY = [c for c in CASES if _reference_budget(c)]


@pytest.mark.parametrize("case", PARITY, ids=[c["name"] for c in PARITY])
def test_tokens_and_forward_calls_match_fast_dllm(model, case):
    out, calls = _run(model, case)
    assert out.tolist() == TENSORS[case["name"]].tolist()
    assert calls <= case["nfe"]


def test_the_fixture_discriminates():
    """Caches and thresholds change the tokens of this model, and thresholds reveal several tokens per step."""
    by = {c["name"]: TENSORS[c["name"]] for c in CASES}
    assert not torch.equal(by["p9_s0_none_tNone"], by["p9_s0_prefix_tNone"])
    assert not torch.equal(by["p9_s0_none_tNone"], by["p9_s0_dual_tNone"])
    assert not torch.equal(by["p9_s0_prefix_tNone"], by["p9_s0_dual_tNone"])
    fast = [c for c in CASES if c["threshold"] == 0.5 and c["cache"] is None]
    assert all(c["nfe"] < c["gen_length"] / 2 for c in fast)


BOUNDED = [c for c in CASES if not _reference_budget(c)]


@pytest.mark.parametrize("case", BOUNDED, ids=[c["name"] for c in BOUNDED])
def test_steps_bound_the_threshold_rule(model, case):
    """With fewer steps than block positions, ``steps`` is an upper bound per block (the reference ignores it)."""
    out, calls = _run(model, case)
    blocks = case["gen_length"] // case["block_length"]
    assert calls <= case["steps"] + (blocks if case["cache"] else 0) and not bool((out == model.mask_id).any())
