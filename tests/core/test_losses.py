import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from elbo_toy import ALL, MASK, L, Oracle, quadrature_nelbo, sample_data, toy_joint

from maskzoo.core.errors import UserError
from maskzoo.core.losses import (
    ARLoss,
    DiffusionLoss,
    llada_pretrain_loss,
    llada_sft_loss,
    mdlm_nelbo,
    weighted_masked_ce,
)
from maskzoo.core.masking import llada_mask_prob, mask_tokens, uniform_times
from maskzoo.core.schedules import CosineSchedule, LinearSchedule


def _example(seed=0, B=4, Lq=10, Vq=7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, Lq, Vq, generator=g)
    x0 = torch.randint(0, Vq - 1, (B, Lq), generator=g)
    is_masked = torch.rand(B, Lq, generator=g) < 0.5
    return logits, x0, is_masked


def test_weighted_masked_ce_by_hand():
    logits, x0, m = _example()
    ce = -torch.log_softmax(logits, -1).gather(-1, x0[..., None])[..., 0]  # [B, L]
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    rows = (ce * m * w[:, None]).sum(-1)
    torch.testing.assert_close(weighted_masked_ce(logits, x0, m, w, 40.0), rows.sum() / 40)
    n = torch.tensor([1.0, 2.0, 5.0, 10.0])
    torch.testing.assert_close(weighted_masked_ce(logits, x0, m, w, n), (rows / n).mean())
    w_tok = torch.rand(4, 10)
    torch.testing.assert_close(weighted_masked_ce(logits, x0, m, w_tok, 3.0), (ce * m * w_tok).sum() / 3)
    with pytest.raises(ValueError, match="normalizer"):
        weighted_masked_ce(logits, x0, m, w, torch.ones(3))


def test_llada_pretrain_matches_guidelines_formula():
    logits, x0, m = _example(1)
    t = torch.rand(4, generator=torch.Generator().manual_seed(2))
    p = llada_mask_prob(t)  # [B]
    p_mask = p[:, None].repeat(1, x0.shape[1])  # GUIDELINES keeps p_mask as [B, L]
    token_loss = F.cross_entropy(logits[m], x0[m], reduction="none") / p_mask[m]
    expected = token_loss.sum() / (x0.shape[0] * x0.shape[1])
    torch.testing.assert_close(llada_pretrain_loss(logits, x0, m, p), expected)
    torch.testing.assert_close(llada_pretrain_loss(logits, x0, m, p_mask), expected)
    # MDLM NELBO with the linear schedule at t = p_mask is the same number when nothing is non-maskable
    torch.testing.assert_close(mdlm_nelbo(logits, x0, m, p, LinearSchedule()), expected)


def test_llada_sft_matches_guidelines_formula():
    logits, x0, _ = _example(3)
    B, Lq = x0.shape
    prompt_lengths = torch.tensor([2, 5, 0, 9])
    prompt = torch.arange(Lq)[None] < prompt_lengths[:, None]  # [B, L]
    p = llada_mask_prob(torch.rand(B, generator=torch.Generator().manual_seed(4)))
    mask_id = 99
    noisy, m = mask_tokens(x0, p, mask_id, generator=torch.Generator().manual_seed(5))
    noisy[prompt] = x0[prompt]  # "Do not add noise to the prompt"
    masked = noisy == mask_id
    answer_lengths = (1 - prompt.long()).sum(-1, keepdim=True).repeat(1, Lq)
    p_mask = p[:, None].repeat(1, Lq)
    token_loss = F.cross_entropy(logits[masked], x0[masked], reduction="none") / p_mask[masked]
    expected = torch.sum(token_loss / answer_lengths[masked]) / B
    torch.testing.assert_close(llada_sft_loss(logits, x0, masked, p, ~prompt), expected)
    assert not masked[prompt].any()


def test_infinite_weight_on_unmasked_row_is_harmless():
    logits, x0, m = _example(6)
    logits.requires_grad_(True)
    m[0] = False
    t = torch.tensor([0.0, 0.3, 0.5, 0.9])  # weight 1/0 = inf on the row with nothing masked
    loss = mdlm_nelbo(logits, x0, m, t, LinearSchedule())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert (logits.grad[0] == 0).all()


class Spy(torch.nn.Module):
    """Tiny model: embedding + linear; records what it sees."""

    def __init__(self, vocab=12, wrap=False):
        super().__init__()
        self.emb, self.out, self.wrap, self.seen = (
            torch.nn.Embedding(vocab, 8),
            torch.nn.Linear(8, vocab),
            wrap,
            [],
        )

    def forward(self, input_ids, attention_mask=None):
        self.seen.append((input_ids.clone(), attention_mask))
        logits = self.out(self.emb(input_ids))
        return SimpleNamespace(logits=logits) if self.wrap else logits


def _batch(B=6, Lq=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 10, (B, Lq), generator=g)
    maskable = torch.arange(Lq)[None] >= torch.randint(0, 8, (B, 1), generator=g)  # prompt = prefix
    attention_mask = (torch.arange(Lq)[None] < Lq - torch.randint(0, 4, (B, 1), generator=g)).long()
    return {"input_ids": ids, "maskable": maskable, "attention_mask": attention_mask}


@pytest.mark.parametrize("wrap", [False, True])
def test_diffusion_loss_never_masks_prompt_or_padding(wrap):
    model, batch = Spy(wrap=wrap), _batch()
    loss_fn = DiffusionLoss(11, schedule="cosine", generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        loss, metrics = loss_fn(model, batch)
    xt, am = model.seen[-1]
    assert am is batch["attention_mask"]
    protected = ~(batch["maskable"] & batch["attention_mask"].bool())
    for xt, _ in model.seen:
        assert torch.equal(xt[protected], batch["input_ids"][protected])
    assert any((xt == 11).any() for xt, _ in model.seen)
    assert set(metrics) == {"loss", "masked_ce", "mask_rate"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert 0 <= metrics["mask_rate"] <= 1 and metrics["loss"] == pytest.approx(loss.item())
    loss.backward()
    assert model.emb.weight.grad is not None and torch.isfinite(model.emb.weight.grad).all()


def test_diffusion_loss_is_its_documented_composition():
    """DiffusionLoss.llada_sft == t ~ U, p = (1-eps)t + eps, mask, llada_sft_loss (same RNG stream)."""
    model, batch = Spy(), _batch(seed=1)
    batch.pop("attention_mask")
    loss, _ = DiffusionLoss.llada_sft(11, generator=torch.Generator().manual_seed(7))(model, batch)
    g = torch.Generator().manual_seed(7)
    p = llada_mask_prob(uniform_times(6, generator=g))
    xt, m = mask_tokens(batch["input_ids"], p, 11, batch["maskable"], generator=g)
    assert torch.equal(model.seen[-1][0], xt)
    expected = llada_sft_loss(model(input_ids=xt), batch["input_ids"], m, p, batch["maskable"])
    torch.testing.assert_close(loss, expected)


def test_diffusion_loss_bad_input():
    with pytest.raises(UserError, match="input_ids"):
        DiffusionLoss(11)(Spy(), {"ids": torch.zeros(1, 2, dtype=torch.long)})
    with pytest.raises(UserError, match="maskable"):
        DiffusionLoss(11)(
            Spy(), {"input_ids": torch.zeros(2, 3, dtype=torch.long), "maskable": torch.ones(2, 2)}
        )
    with pytest.raises(UserError, match="normalization"):
        DiffusionLoss(11, normalization="per_token")
    with pytest.raises(UserError, match="t_min"):
        DiffusionLoss(11, t_min=1.0)


def test_ar_loss_is_next_token_ce():
    model, batch = Spy(), _batch(seed=2)
    loss, metrics = ARLoss()(model, batch)
    logits = model(input_ids=batch["input_ids"])
    scored = (batch["maskable"] & batch["attention_mask"].bool())[:, 1:]
    ce = F.cross_entropy(logits[:, :-1][scored], batch["input_ids"][:, 1:][scored])
    torch.testing.assert_close(loss, ce)
    assert metrics == {"loss": pytest.approx(ce.item())}


# ---------------------------------------------------------------------------------------------------------------
# The training objective on a distribution with exactly known conditionals


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_nelbo_loss_mean_equals_analytic_value(schedule, smoothing):
    """Averaged over batches, the NELBO training loss (antithetic times, time floor t_min, per-token
    normalisation) equals its exact value (1/(1-t_min)) int_{t_min}^1 w(t) E[c] dt / L computed by quadrature;
    the exact NELBO (t_min = 0) is never below the true NLL (entropy) per token."""
    probs, t_min = toy_joint(), 1e-3
    oracle = Oracle(probs, smoothing)
    loss_fn = DiffusionLoss(MASK, schedule=schedule, t_min=t_min, generator=torch.Generator().manual_seed(1))
    data = sample_data(probs, 64 * 150, seed=2)
    losses = torch.tensor(
        [loss_fn(oracle, {"input_ids": b})[0].item() for b in data.split(64)], dtype=torch.float64
    )
    estimate, se = losses.mean().item(), losses.std().item() / math.sqrt(len(losses))

    floored = torch.tensor(
        [quadrature_nelbo(oracle, x, schedule, t_lo=t_min) for x in ALL], dtype=torch.float64
    ) / (1 - t_min)
    exact = torch.tensor([quadrature_nelbo(oracle, x, schedule) for x in ALL], dtype=torch.float64)
    analytic, exact = float(probs @ floored) / L, float(probs @ exact) / L
    entropy = float(-(probs * probs.log()).sum()) / L  # true NLL per token
    assert abs(estimate - analytic) < 4 * se, (estimate, analytic, se)
    assert se < 0.02
    assert abs(analytic - exact) < 1e-3  # the floor's bias is small
    if smoothing:
        assert exact - entropy > 0.05 and estimate - entropy > 5 * se  # a worse model: a clearly looser bound
    else:
        assert exact == pytest.approx(entropy, abs=1e-9)  # exact conditionals: the bound is tight
