"""Helpers for the vision tests: tiny models and a tiny checkpoint in the published LLaDA-V layout.

The LLaDA-V layout (config fields and tensor names) is taken from ML-GSAI/LLaDA-V's training code:
``LlavaLLaDAConfig`` (LLaDA LM fields + LLaVA ``mm_*`` fields written by ``llava/train/train.py``), the
HF-style LLaDA LM names produced by ``llada_v_prepare/rename_checkpoint.py``, ``model.mm_projector`` built by
``build_vision_projector`` (``mlp2x_gelu`` = Linear, GELU, Linear), ``model.image_newline`` for
``spatial_unpad``, and the SigLIP tower at ``model.vision_tower.vision_tower.vision_model`` with its last
encoder layer deleted and no pooling head. Tensors are random (seeded); nothing here runs reference code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

SIGLIP = {"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 3,
          "num_attention_heads": 2, "image_size": 32, "patch_size": 8, "num_channels": 3, "layer_norm_eps": 1e-6,
          "hidden_act": "gelu_pytorch_tanh"}
LM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "rope_theta": 500000.0}
SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|eot_id|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|reserved_token_0|>"]
WORDS = ["user", "assistant", "system", "describe", "the", "image", ".", "a", "red", "circle", "you", "are",
         "helpful", "language", "and", "vision", "assistant", "able", "to", "understand", "visual", "content",
         "that", "provides", ",", "assist", "with", "variety", "of", "tasks", "using", "natural", "is", "in"]
TOWER = "model.vision_tower.vision_tower.vision_model."


def write_tokenizer(path: Path) -> int:
    """A word-level tokenizer.json with LLaDA's special tokens (no <image>: LLaDA's vocabulary has none)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(dict.fromkeys(["[UNK]", *WORDS]))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.add_special_tokens(SPECIALS)
    tok.save(str(path))
    return tok.get_vocab_size()


def make_llava_llada_dir(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Write a tiny LLaDA-V checkpoint directory; returns its tensors (published names)."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = write_tokenizer(path / "tokenizer.json")
    (path / "siglip-tiny").mkdir(exist_ok=True)
    (path / "siglip-tiny" / "config.json").write_text(json.dumps(SIGLIP, indent=2))
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    d, hv, ff = SIGLIP["hidden_size"], LM["hidden_size"], SIGLIP["intermediate_size"]
    n_pos = (SIGLIP["image_size"] // SIGLIP["patch_size"]) ** 2
    t: dict[str, torch.Tensor] = {
        TOWER + "embeddings.patch_embedding.weight": r(d, 3, 8, 8), TOWER + "embeddings.patch_embedding.bias": r(d),
        TOWER + "embeddings.position_embedding.weight": r(n_pos, d),
        TOWER + "post_layernorm.weight": 1 + r(d), TOWER + "post_layernorm.bias": r(d),
    }
    for i in range(SIGLIP["num_hidden_layers"] - 1):  # LLaDA-V deletes the last encoder layer
        p = f"{TOWER}encoder.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{n}.weight"], t[p + f"self_attn.{n}.bias"] = r(d, d), r(d)
        for n in ("layer_norm1", "layer_norm2"):
            t[p + f"{n}.weight"], t[p + f"{n}.bias"] = 1 + r(d), r(d)
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = r(ff, d), r(ff)
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = r(d, ff), r(d)
    t["model.mm_projector.0.weight"], t["model.mm_projector.0.bias"] = r(hv, d), r(hv)
    t["model.mm_projector.2.weight"], t["model.mm_projector.2.bias"] = r(hv, hv), r(hv)
    t["model.image_newline"] = r(hv)
    t["model.embed_tokens.weight"], t["model.norm.weight"] = r(vocab, hv), 1 + r(hv)
    t["lm_head.weight"] = r(vocab, hv)
    for i in range(LM["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{n}.weight"] = r(hv, hv)
        t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = r(64, hv), r(64, hv)
        t[p + "mlp.down_proj.weight"] = r(hv, 64)
        t[p + "input_layernorm.weight"], t[p + "post_attention_layernorm.weight"] = 1 + r(hv), 1 + r(hv)
    from safetensors.torch import save_file

    save_file(t, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlavaLLaDAModelLM"], "model_type": "llava_llada", **LM, "vocab_size": vocab,
        "max_position_embeddings": 256, "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu",
        "initializer_range": 0.02, "pretraining_tp": 1, "rope_scaling": None, "tie_word_embeddings": False,
        "torch_dtype": "float32", "use_cache": False, "bos_token_id": SPECIALS.index("<|startoftext|>"),
        "eos_token_id": 1, "mm_vision_tower": "siglip-tiny", "vision_tower_pretrained": "",
        "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": d, "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch", "mm_patch_merge_type": "spatial_unpad",
        "image_aspect_ratio": "anyres_max_4", "image_grid_pinpoints": [[32, 32], [32, 64], [64, 32]],
        "image_crop_resolution": None, "image_split_resolution": None, "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False, "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
        "mm_vision_tower_lr": 2e-6, "mm_projector_lr": None, "use_mm_proj": True, "mm_newline_position": "one_token",
        "mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": None, "tokenizer_model_max_length": 8192,
        "tokenizer_padding_side": "right", "add_faster_video": False, "faster_token_stride": 10,
        "force_sample": False, "add_time_instruction": False, "tune_mm_mlp_adapter": False,
        "freeze_mm_mlp_adapter": False, "unfreeze_mm_vision_tower": True,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return t


def siglip_reference(t: dict[str, torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
    """HF SigLIP semantics written out with plain torch ops: hidden state after the last stored layer."""
    heads, eps = SIGLIP["num_attention_heads"], SIGLIP["layer_norm_eps"]
    x = F.conv2d(pixels, t[TOWER + "embeddings.patch_embedding.weight"], t[TOWER + "embeddings.patch_embedding.bias"],
                 stride=SIGLIP["patch_size"])  # [B, D, g, g]
    x = x.flatten(2).transpose(1, 2) + t[TOWER + "embeddings.position_embedding.weight"]  # [B, N, D]
    b, n, d = x.shape
    hd = d // heads
    for i in range(SIGLIP["num_hidden_layers"] - 1):
        p = f"{TOWER}encoder.layers.{i}."

        def lin(v, name, p=p):
            return F.linear(v, t[p + name + ".weight"], t[p + name + ".bias"])

        h = F.layer_norm(x, (d,), t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"], eps)
        q, k, v = (lin(h, f"self_attn.{c}_proj").view(b, n, heads, hd).transpose(1, 2) for c in "qkv")
        att = (q @ k.transpose(-1, -2) / math.sqrt(hd)).softmax(-1)  # [B, H, N, N]
        x = x + lin((att @ v).transpose(1, 2).reshape(b, n, d), "self_attn.out_proj")
        h = F.layer_norm(x, (d,), t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"], eps)
        x = x + lin(F.gelu(lin(h, "mlp.fc1"), approximate="tanh"), "mlp.fc2")
    return x


def llada_reference_dir(t: dict[str, torch.Tensor], path: Path, vocab: int) -> Path:
    """The language model of ``t`` written in the original LLaDA layout (read by the core's verified loader)."""
    from safetensors.torch import save_file

    names = {"self_attn.q_proj": "q_proj", "self_attn.k_proj": "k_proj", "self_attn.v_proj": "v_proj",
             "self_attn.o_proj": "attn_out", "mlp.gate_proj": "ff_proj", "mlp.up_proj": "up_proj",
             "mlp.down_proj": "ff_out", "input_layernorm": "attn_norm", "post_attention_layernorm": "ff_norm"}
    out = {"model.transformer.wte.weight": t["model.embed_tokens.weight"],
           "model.transformer.ln_f.weight": t["model.norm.weight"],
           "model.transformer.ff_out.weight": t["lm_head.weight"]}
    for k, v in t.items():
        if k.startswith("model.layers."):
            _, _, i, rest = k.split(".", 3)
            out[f"model.transformer.blocks.{i}.{names[rest.removesuffix('.weight')]}.weight"] = v
    path.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path / "model.safetensors"))
    cfg = {"model_type": "llada", "d_model": LM["hidden_size"], "n_heads": LM["num_attention_heads"],
           "n_kv_heads": LM["num_key_value_heads"], "n_layers": LM["num_hidden_layers"], "mlp_hidden_size": 64,
           "vocab_size": vocab, "embedding_size": vocab, "rope_theta": LM["rope_theta"],
           "rms_norm_eps": LM["rms_norm_eps"], "max_sequence_length": 256, "weight_tying": False,
           "mask_token_id": SPECIALS.index("<|mdm_mask|>") + len(dict.fromkeys(["[UNK]", *WORDS]))}
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def tiny_vlm(tower: str = "timm:test_resnet", layer: int = 3, image_size: int = 32, projector: str = "mlp2x_gelu",
             image_newline: bool = False, kwargs: dict | None = None, seed: int = 0):
    """A small VisionLanguageModel with the built-in scene tokenizer: (model, tokenizer)."""
    from maskzoo.vision.model import VisionLanguageModel, VisionModelConfig
    from maskzoo.vision.tokenizer import WordTokenizer

    torch.manual_seed(seed)
    tok = WordTokenizer.for_scenes()
    lm = {"vocab_size": tok.vocab_size, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 64,
          "mask_token_id": tok.mask_id}
    cfg = VisionModelConfig(lm=lm, tower={"name": tower, "layer": layer, "image_size": image_size,
                                          "kwargs": kwargs or {}, "preprocess": {"crop_pct": 1.0}},
                            projector=projector, image_token_id=tok.image_id, image_newline=image_newline)
    return VisionLanguageModel(cfg), tok


LLADA_V_REF = Path(__file__).parent / "fixtures" / "llada_v_ref"


def lladav_reference_checkpoint(path: Path) -> Path:
    """Unpack the LLaDA-V reference fixture's checkpoint (its two large files are stored xz-compressed) into
    ``path``; returns the checkpoint directory. See fixtures/llada_v_ref/README.md."""
    import lzma
    import shutil

    src = LLADA_V_REF / "checkpoint"
    out = path / "LLaDA-V-tiny"
    shutil.copytree(src, out)
    for packed in out.rglob("*.xz"):
        packed.with_suffix("").write_bytes(lzma.decompress(packed.read_bytes()))
        packed.unlink()
    return out
