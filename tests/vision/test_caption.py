"""The Python Captioner: PIL images and paths, sampler settings, checkpoints that round-trip."""

from __future__ import annotations

import pytest
import torch
from _vision_fixtures import tiny_vlm
from PIL import Image

from maskzoo.core.checkpoint import load_model
from maskzoo.core.errors import UserError
from maskzoo.vision import Captioner, load_vision_model, save_vision_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, tok = tiny_vlm(projector="linear", image_newline=True)
    path = save_vision_model(model, tok, tmp_path_factory.mktemp("cap") / "m", extra={"generation": {"steps": 4, "gen_length": 8}})
    return model, path


def test_round_trip_through_the_core_loader(saved):
    model, path = saved
    again = load_model(path)  # maskzoo.core.load_model dispatches on the registered architecture
    loaded, tok = load_vision_model(path)
    ids = torch.full((1, 6), tok.mask_id)
    for m in (again, loaded):
        assert type(m).__name__ == "VisionLanguageModel"
        assert torch.equal(m(ids), model.eval()(ids))


def test_pil_and_paths_and_settings(saved, tmp_path):
    _, path = saved
    cap = Captioner.from_pretrained(path)
    s = cap.generation()
    assert (s["steps"], s["gen_length"], s["block_length"]) == (4, 8, 8)  # from the checkpoint, one block
    assert cap.generation(steps=2)["steps"] == 2
    img = Image.new("RGB", (40, 40), (10, 200, 10))
    img.save(tmp_path / "g.png")
    a = cap([img, tmp_path / "g.png"])
    assert len(a) == 2 and a[0] == a[1]  # greedy: a path and the same PIL image agree
    for remasking in ("low_confidence", "margin", "entropy", "random", "ancestral"):
        out = cap.caption([img, img], remasking=remasking, steps=2, gen_length=4, block_length=2,
                          generator=torch.Generator().manual_seed(0))
        assert len(out) == 2
    g = torch.Generator().manual_seed(1)
    hot = cap.caption([img] * 3, temperature=1.0, generator=g)
    assert len(hot) == 3
    with pytest.raises(UserError, match="no <image> placeholder"):
        cap.caption([img], prompt="describe the image .")
    with pytest.raises(UserError, match="not divisible|multiple of"):
        cap.caption([img], steps=3, gen_length=8, block_length=2)


def test_batches_give_the_same_captions_as_single_images(saved):
    _, path = saved
    cap = Captioner.from_pretrained(path)
    imgs = [Image.new("RGB", (32, 32), c) for c in ((200, 0, 0), (0, 0, 200), (200, 200, 0))]
    assert cap.caption(imgs, batch_size=3) == [cap.caption([im])[0] for im in imgs]
