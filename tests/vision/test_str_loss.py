"""The MDiff4STR loss against hand-computed values; the replacement pass; the autoregressive baseline."""

from __future__ import annotations

import math

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.vision.str.alphabet import Alphabet
from maskzoo.vision.str.loss import ARLoss, MDiffLoss, ctc_aux_loss, label_ce, mdiff_mask_loss, shift_right
from maskzoo.vision.str.model import STRConfig, STRModel
from maskzoo.vision.str.noise import NoiseMix


def test_mask_loss_matches_hand_computation():
    # two rows, 4 positions, 3 classes; row 0: label of n=1 char (+EOS), row 1: n=2 chars (+EOS)
    logits = torch.zeros(2, 4, 3)
    logits[0, 0] = torch.tensor([2.0, 0.0, 0.0])
    logits[1, 2] = torch.tensor([0.0, 0.0, 1.0])
    targets = torch.tensor([[1, 0, 9, 9], [2, 1, 0, 9]])
    masked = torch.tensor([[True, True, False, False], [False, False, True, False]])
    p = torch.tensor([1.0, 1 / 3])
    lengths = torch.tensor([1, 2])
    ce_00 = -math.log(1 / (math.e**2 + 2))  # target 1 under logits (2, 0, 0)
    ce_01 = math.log(3)  # uniform
    ce_12 = -math.log(1 / (math.e + 2))  # target 0 under (0, 0, 1)
    row0 = (ce_00 + ce_01) / 1.0 / (1 + 2)
    row1 = ce_12 / (1 / 3) / (2 + 2)
    expected = (row0 + row1) / 2
    got = mdiff_mask_loss(logits, targets, masked, p, lengths)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_label_ce_ignores_pad_and_averages_the_rest():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 3.0
    targets = torch.tensor([[2, 0, 7]])  # 7 = PAD here
    expected = (-math.log(math.e**3 / (math.e**3 + 3)) + math.log(4)) / 2
    assert label_ce(logits, targets, pad_id=7).item() == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def batch():
    a = Alphabet()
    torch.manual_seed(0)
    return {"images": torch.randn(4, 1, 32, 128), "targets": a.encode_batch(["ab", "xyz", "Q", "hello!"])}


def _model(causal=False):
    torch.manual_seed(0)
    return STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny", causal=causal, dropout=0.0))


def test_replacement_pass_adds_its_weighted_loss(batch):
    model = _model()
    torch.manual_seed(1)
    loss0, m0 = MDiffLoss(model.alphabet, NoiseMix(replace_weight=0.0))(model, batch)
    assert "loss_replace" not in m0 and loss0.item() == pytest.approx(float(m0["loss_mask"]), rel=1e-6)
    torch.manual_seed(1)
    loss, m = MDiffLoss(model.alphabet, NoiseMix(replace_weight=0.5))(model, batch)
    assert float(m["loss_mask"]) == pytest.approx(float(m0["loss_mask"]), rel=1e-6)  # same noise draw
    assert loss.item() == pytest.approx(float(m["loss_mask"]) + 0.5 * float(m["loss_replace"]), rel=1e-5)
    assert 0.0 <= float(m["replaced_wrong"]) <= 1.0
    loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters() if p.requires_grad)


def test_replacement_input_holds_the_models_own_predictions(batch):
    model = _model()
    seen = []
    decode = model.decode
    model.decode = lambda mem, x: seen.append(x.clone()) or decode(mem, x)  # record the two decoder inputs
    torch.manual_seed(3)
    MDiffLoss(model.alphabet, NoiseMix())(model, batch)
    x_t, x_r = seen
    a, targets = model.alphabet, batch["targets"]
    masked = (x_t == a.mask_id) & (targets != a.pad_id)
    with torch.no_grad():
        preds = decode(model.encode(batch["images"]), x_t).argmax(-1)
    assert torch.equal(x_r[masked], preds[masked])
    assert torch.equal(x_r[~masked & (targets != a.pad_id)], targets[~masked & (targets != a.pad_id)])
    assert (x_r[targets == a.pad_id] == a.mask_id).all()


def test_autoregressive_baseline_is_teacher_forced(batch):
    a = Alphabet()
    x = shift_right(batch["targets"], a.bos_id, a.mask_id, a.pad_id)
    assert (x[:, 0] == a.bos_id).all()
    assert torch.equal(x[0, 1:4], batch["targets"][0, :3])  # 'a', 'b', EOS shifted right by one
    model = _model(causal=True)
    loss, m = ARLoss(a)(model, batch)
    assert m["num_tokens"] == 3 + 4 + 2 + 7
    logits = model(x, batch["images"])
    assert loss.item() == pytest.approx(label_ce(logits, batch["targets"], a.pad_id).item(), rel=1e-5)


def test_causal_decoder_ignores_later_tokens_and_the_diffusion_decoder_does_not(batch):
    for causal in (True, False):
        model = _model(causal).eval()
        x = torch.full((1, 26), model.alphabet.mask_id)
        y = x.clone()
        y[0, 10] = 5
        with torch.no_grad():
            mem = model.encode(batch["images"][:1])
            same = torch.allclose(model.decode(mem, x)[0, :10], model.decode(mem, y)[0, :10], atol=1e-6)
        assert same == causal


def test_ctc_aux_loss_is_zero_on_the_one_alignment_and_large_off_it():
    torch.manual_seed(0)
    model = STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny", dropout=0.0, ctc_aux=True))
    a = model.alphabet
    targets = a.encode_batch(["ab"])  # [1, L]
    w = model.config.width // 4
    path = [a.encode("a")[0], a.encode("b")[0]] + [a.ctc_blank_id] * (w - 2)
    onehot = torch.full((w, 1, a.num_classes), -1e4)
    onehot[torch.arange(w), 0, torch.tensor(path)] = 0.0  # every column certain: a, b, blank, blank, ...
    model.ctc_log_probs = lambda memory: onehot.log_softmax(-1)
    assert ctc_aux_loss(model, torch.zeros(1, 64, 160), targets, a).item() == pytest.approx(0.0, abs=1e-4)
    model.ctc_log_probs = lambda memory: onehot.flip(0).log_softmax(-1)  # blanks, then b, a: the wrong order
    assert ctc_aux_loss(model, torch.zeros(1, 64, 160), targets, a).item() > 100


def test_both_losses_add_the_weighted_ctc_term_only_with_a_head(batch):
    torch.manual_seed(0)
    model = STRModel(STRConfig.from_preset("tiny", encoder="svtrv2-tiny", dropout=0.0, ctc_aux=True))
    a = model.alphabet
    lp = model.ctc_log_probs(model.encode(batch["images"]))
    assert lp.shape == (model.config.width // 4, 4, a.num_classes)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-5)
    loss, m = ARLoss(a, ctc_weight=0.5)(model, batch)
    plain, _ = ARLoss(a)(model, batch)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * float(m["loss_ctc"]), rel=1e-5)
    torch.manual_seed(2)
    loss, m = MDiffLoss(a, NoiseMix(replace_weight=0.0), ctc_weight=0.5)(model, batch)
    assert loss.item() == pytest.approx(float(m["loss_mask"]) + 0.5 * float(m["loss_ctc"]), rel=1e-5)
    assert "loss_ctc" not in MDiffLoss(a, NoiseMix(), ctc_weight=0.5)(_model(), batch)[1]
    with pytest.raises(UserError, match="svtrv2"):
        STRModel(STRConfig.from_preset("tiny", encoder="timm:resnet18", ctc_aux=True))
