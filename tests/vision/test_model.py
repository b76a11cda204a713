"""Image features enter through inputs_embeds at the <image> placeholders; stages freeze what they must."""

from __future__ import annotations

import pytest
import torch
from _vision_fixtures import tiny_vlm

from maskzoo.core.errors import UserError
from maskzoo.core.training import TrainConfig, Trainer
from maskzoo.vision.data import Collator, Example
from maskzoo.vision.stages import apply_stage, staged_param_groups
from maskzoo.vision.template import encode_prompt, get_template
from maskzoo.vision.train import VisionSFTLoss


def test_splicing_several_images_per_prompt():
    model, tok = tiny_vlm(image_newline=True)
    model.eval()
    t = model.tokens_per_image
    assert t == model.tower.num_tokens + 1
    text = "<image> describe the image . <image> what is in this picture ?"
    row = torch.tensor(encode_prompt(tok, get_template("word"), text, t))
    ids = torch.stack([row, row.flip(0)])  # two rows, four images in row-major order
    pixels = torch.randn(4, 3, 32, 32)
    feats = model.encode_images(pixels)  # [4, T, D]
    emb = model.embed(ids, feats)
    want = model.lm.embed_tokens(ids).clone()
    k = 0
    for b in range(2):
        pos = (ids[b] == tok.image_id).nonzero().flatten()
        for run in pos.split(t):
            want[b, run] = feats[k]
            k += 1
    assert torch.equal(emb, want)
    assert torch.equal(model(ids, pixel_values=pixels), model.lm(inputs_embeds=want))
    assert torch.equal(model.denoiser(feats)(ids), model(ids, image_features=feats))
    with pytest.raises(UserError, match="4 <image> placeholder"):
        model(ids, pixel_values=pixels[:3])


def _batch(model, tok, n=4):
    from maskzoo.vision.data import SceneDataset

    ds = SceneDataset("train", n, "<image> describe the image .", image_size=32)
    collate = Collator(tok, get_template("word"), model.tower.preprocess, model.tokens_per_image, 0)
    return collate([ds[i] for i in range(n)])


class _Repeat:
    def __init__(self, batch):
        self.batch = batch

    def __iter__(self):
        while True:
            yield self.batch

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def _fit(model, tok, tmp_path, stage, train_tower=False, tower_scale=1.0):
    apply_stage(model, stage, train_tower)
    cfg = TrainConfig(max_steps=3, lr=1e-2, warmup_steps=0, log_every=0, save_every=0, progress=False)
    trainer = Trainer(model, VisionSFTLoss(model.mask_id), _Repeat(_batch(model, tok)), cfg,
                      run_dir=tmp_path / f"s{stage}{train_tower}",
                      optimizer_groups=staged_param_groups(model, cfg, tower_scale))
    trainer.fit()
    return trainer


def test_stage1_trains_the_projector_only_and_frozen_weights_stay_bit_identical(tmp_path):
    model, tok = tiny_vlm()  # test_resnet tower: batch norm statistics must not move either
    tower, lm, proj = _snapshot(model.tower), _snapshot(model.lm), _snapshot(model.projector)
    _fit(model, tok, tmp_path, stage=1)
    assert _same(tower, _snapshot(model.tower)) and _same(lm, _snapshot(model.lm))
    assert not _same(proj, _snapshot(model.projector))


def test_stage2_trains_projector_and_lm_tower_optionally_at_its_own_lr(tmp_path):
    model, tok = tiny_vlm()
    tower, lm = _snapshot(model.tower), _snapshot(model.lm)
    _fit(model, tok, tmp_path, stage=2)
    assert _same(tower, _snapshot(model.tower)) and not _same(lm, _snapshot(model.lm))
    tower = _snapshot(model.tower)
    trainer = _fit(model, tok, tmp_path, stage=2, train_tower=True, tower_scale=0.1)
    assert not _same(tower, _snapshot(model.tower))
    tower_ids = {id(p) for p in model.tower.parameters()}
    lrs = {id(g["params"][0]) in tower_ids: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs[True] == pytest.approx(0.1 * lrs[False])  # the tower follows its own, proportional schedule
    with pytest.raises(UserError, match="stage 1 trains the projector only"):
        apply_stage(model, 1, train_tower=True)


def test_collator_orders_images_like_placeholders():
    model, tok = tiny_vlm()
    from PIL import Image

    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    ex = Example([red, blue], [("user", "<image> and <image>"), ("assistant", "a red circle")])
    batch = Collator(tok, get_template("word"), model.tower.preprocess, model.tokens_per_image)([ex])
    assert batch["pixel_values"].shape[0] == 2
    assert batch["pixel_values"][0, 0].mean() > batch["pixel_values"][1, 0].mean()  # red first
    assert (batch["input_ids"] == tok.image_id).sum() == 2 * model.tokens_per_image
    assert not batch["maskable"][batch["input_ids"] == tok.image_id].any()
