"""A published-layout LLaDA-V checkpoint gives what LLaDA-V's own code gives (fixtures/llada_v_ref/README.md).

The fixture was made by running ML-GSAI/LLaDA-V's code, unmodified, on a tiny checkpoint it wrote: SigLIP at the
real 384-px / 729-token geometry (so the stride-14 convolution ignores each view's last 6 pixels), the
``anyres_max_4`` tiling over (1x1)..(6x6) grids of 384-px tiles, LLaDA's 269 special tokens at their real ids.
Compared here: the prompt ids of ``tokenizer_image_token``, the spliced prompt embeddings (image features after
tiling, unpadding, ``anyres_max`` downsampling, newlines; several images; video frames), the logits, the
greedy tokens of ``generate`` (suppressed ids included) in three block settings, and the captions.
"""

from __future__ import annotations

import json

import pytest
import torch
from _vision_fixtures import LLADA_V_REF, lladav_reference_checkpoint
from PIL import Image
from safetensors.torch import load_file

from maskzoo.core.errors import UserError
from maskzoo.vision.caption import Captioner
from maskzoo.vision.images import load_image
from maskzoo.vision.template import llava_image_tokens, render_prompt

IMAGE_TOKEN_INDEX = -200  # LLaDA-V's placeholder id in input_ids
CASES = ["square", "wide", "tall", "wide_small", "tall_small", "two_images", "video"]
IMAGES = {"video_eot": [f"frame{k}.png" for k in range(4)], "square": ["square.png"], "wide": ["wide.png"], "tall": ["tall.png"], "wide_small": ["wide_small.png"],
          "tall_small": ["tall_small.png"], "two_images": ["wide.png", "square.png"],
          "video": [f"frame{k}.png" for k in range(4)]}
# "stop": the demo's call, stopping_criteria=["<|eot_id|>"] with the block-8 setting (no <|eot_id|> came up here)
GENERATED = [("video", "0"), ("video", "1"), ("video", "2"), ("video", "stop"), ("wide_small", "0"),
             ("wide_small", "1"), ("wide_small", "stop"), ("tall_small", "2"), ("tall_small", "stop"),
             ("video_eot", "1")]  # video_eot: a question after which <|eot_id|> comes up inside the second block


@pytest.fixture(scope="module")
def ref():
    tensors = load_file(str(LLADA_V_REF / "reference.safetensors"))
    meta = json.loads((LLADA_V_REF / "reference.json").read_text(encoding="utf-8"))
    return tensors, meta


@pytest.fixture(scope="module")
def cap(tmp_path_factory):
    torch.set_num_threads(1)
    return Captioner.from_pretrained(lladav_reference_checkpoint(tmp_path_factory.mktemp("lladav")))


def _images(name: str) -> list[Image.Image]:
    return [load_image(LLADA_V_REF / "images" / f) for f in IMAGES[name]]


def _features(cap: Captioner, name: str) -> list[torch.Tensor]:
    frames = _images(name)
    if name.startswith("video"):
        return [cap.model.encode_video(frames)]  # [F 14 14 + 1, D]
    return [cap.model.encode_image_tiled(im) for im in frames]  # n x [N_i, D]


def _unused_columns(tensors: dict, vocab: int) -> torch.Tensor:
    keep = torch.ones(vocab, dtype=torch.bool)
    keep[tensors["real_columns"]] = False
    return keep


def _prompt(cap: Captioner, meta: dict, name: str, feats: list[torch.Tensor]) -> torch.Tensor:
    from maskzoo.vision.template import encode_prompt

    ids = encode_prompt(cap.tok, cap.template, meta["cases"][name]["question"], [f.shape[0] for f in feats])
    return torch.tensor(ids)[None]  # [1, P]


def test_the_fixture_is_the_published_geometry(cap):
    model = cap.model
    assert model.tower.image_size == (384, 384) and model.tower.num_tokens == 729  # 27 x 27 of 14 px: 378 < 384
    assert model.anyres.max_patches == 4 and len(model.anyres.resolutions) == 36
    assert model.lm.config.vocab_size == 126349  # resize_token_embeddings(len(tokenizer)), as LLaDA-V loads it
    assert model.config.suppress_tokens == [126080, 126081, 126346, 126347]
    assert cap.generation() == {"gen_length": 128, "steps": 128, "block_length": 128, "temperature": 0.0,
                                "remasking": "low_confidence"}  # generate_demo.py's settings


@pytest.mark.parametrize("name", CASES)
def test_prompt_ids_equal_tokenizer_image_token(cap, ref, name):
    tensors, meta = ref
    case = meta["cases"][name]
    text = render_prompt(cap.template, case["question"])
    assert text == case["prompt_text"]  # the llava_llada conversation with its system prompt
    want = [cap.tok.image_id if i == IMAGE_TOKEN_INDEX else i for i in tensors[f"{name}.prompt_ids"].tolist()]
    assert llava_image_tokens(cap.tok, text) == want


@pytest.mark.parametrize("name", CASES)
def test_prompt_embeddings_and_logits_equal_the_reference(cap, ref, name):
    tensors, meta = ref
    feats = _features(cap, name)
    prompt = _prompt(cap, meta, name, feats)
    assert prompt.shape[1] == meta["cases"][name]["prompt_length"]
    with torch.no_grad():
        emb = cap.model.embed(prompt, torch.cat(feats)[None])[0]  # [P, D]
        got = emb @ tensors["embed_projection"]  # [P, 4]: a fixed random projection of every row
        torch.testing.assert_close(got, tensors[f"{name}.embeds_projected"], atol=1e-4, rtol=1e-4)
        G = 16
        x = torch.cat([prompt, torch.full((1, G), cap.model.mask_id)], dim=1)  # [1, P + G]
        pos = tensors[f"{name}.logits_positions"]
        denoise = cap.model.denoiser(torch.cat(feats)[None])
        logits = denoise(x, logits_slice=slice(int(pos[0]), int(pos[-1]) + 1))[0]  # [len(pos), V]
    got, want = logits[:, tensors["real_columns"]], tensors[f"{name}.logits"]  # [24, 405] of logits up to ~55
    # float32 rounding (1e-5 in the features) grows through the sharp attention of this tiny model: measured
    # at most 1e-4 of the logits' scale (4.1e-3 for the tall image), so 2e-4 of the scale is allowed
    torch.testing.assert_close(got, want, atol=2e-4 * float(want.abs().max()), rtol=0)
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    assert not logits[:, _unused_columns(tensors, logits.shape[-1])].any()  # rows LLaDA-V's writer left at 0


@pytest.mark.parametrize("name, setting", GENERATED)
def test_greedy_tokens_equal_generate(cap, ref, name, setting, monkeypatch):
    tensors, meta = ref
    feats = _features(cap, name)
    prompt = _prompt(cap, meta, name, feats)
    s = meta["settings"][1 if setting == "stop" else int(setting)]
    stops = cap.model.config.stop_tokens
    assert stops == [cap.tok.token_id("<|eot_id|>")]
    if setting != "stop":  # the reference's plain generate_with_embeds ran without stopping_criteria
        monkeypatch.setattr(cap.model.config, "stop_tokens", [])
    with torch.no_grad():
        x = cap._generate(torch.cat(feats)[None], prompt, cap.generation(**s), None)  # [1, P + G]
    got = x[0, prompt.shape[1]:]
    assert got.tolist() == tensors[f"{name}.generate_{setting}"].tolist()
    assert cap.tok.decode(got).strip() == meta["cases"][name][f"caption_{setting}"]


@pytest.mark.parametrize("name", ["wide_small", "tall_small"])
def test_caption_api_from_an_image_file(cap, ref, name):
    _, meta = ref
    path = LLADA_V_REF / "images" / IMAGES[name][0]
    got = cap.caption([path], prompt=meta["cases"][name]["question"], **meta["settings"][1])
    assert got == [meta["cases"][name]["caption_1" if name == "wide_small" else "caption_stop"]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 captioning needs a CUDA GPU")
def test_bf16_on_gpu_gives_the_float32_prompt_and_close_logits(tmp_path_factory, ref):
    tensors, meta = ref
    gpu = Captioner.from_pretrained(lladav_reference_checkpoint(tmp_path_factory.mktemp("bf16")), device="cuda",
                                    dtype=torch.bfloat16)
    feats = _features(gpu, "wide_small")
    prompt = _prompt(gpu, meta, "wide_small", feats).cuda()
    with torch.no_grad():
        x = gpu._generate(torch.cat(feats)[None], prompt, gpu.generation(**meta["settings"][0]), None)
    assert x.shape == (1, prompt.shape[1] + 16) and not (x == gpu.model.mask_id).any()
    assert torch.cat(feats).dtype == torch.bfloat16


def test_ask_about_video_frames(cap, ref):
    _, meta = ref
    frames = [LLADA_V_REF / "images" / f for f in IMAGES["video"]]
    answer = cap.ask(frames, meta["cases"]["video"]["question"], video=True, **meta["settings"][0])
    assert answer == meta["cases"]["video"]["caption_0"]
    with pytest.raises(UserError, match="placeholder"):
        cap.ask(frames, "<image> <image>\nDescribe.", video=True)


def test_stopping_criteria_inside_a_block(cap, ref):
    tensors, meta = ref
    frames = [LLADA_V_REF / "images" / f for f in IMAGES["video_eot"]]
    want = tensors["video_eot.generate_stop"].tolist()  # cut at the stop: 9 tokens
    assert want[:8] == tensors["video_eot.generate_1"].tolist()[:8]  # plain decoding agrees up to position 8
    answer = cap.ask(frames, meta["cases"]["video_eot"]["question"], video=True, **meta["settings"][1])
    assert answer == meta["cases"]["video_eot"]["caption_stop"]
