"""The published LLaDA-V checkpoint layout (GSAI-ML/LLaDA-V; You et al. 2025, arXiv 2505.16933).

A directory with ``config.json`` (``"model_type": "llava_llada"``: the LLaDA language-model fields of
``LlavaLLaDAConfig`` plus LLaVA's ``mm_*`` fields), ``model.safetensors`` or shards named by
``model.safetensors.index.json``, and ``tokenizer.json``. Only data is read; no code beside the weights runs.

Config fields used::

    hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
    vocab_size, rms_norm_eps, rope_theta, max_position_embeddings, tie_word_embeddings   -> the LLaDA LM
    mm_projector_type ("mlp2x_gelu"), mm_hidden_size                                     -> the projector
    mm_patch_merge_type (contains "unpad" -> a learned ``image_newline``)
    image_aspect_ratio, image_grid_pinpoints (anyres tiling, see below)
    mm_vision_tower: the SigLIP tower; if it names a local folder (absolute or relative to the checkpoint)
    holding the tower's config.json, its heads / eps come from there, else from SigLIP's published widths

Tensor names (published -> maskzoo)::

    model.embed_tokens.weight                              -> lm.embed.weight
    model.layers.{i}.self_attn.{q,k,v,o}_proj.weight       -> lm.blocks.{i}.attn.{q,k,v,o}_proj.weight
    model.layers.{i}.mlp.{gate,up,down}_proj.weight        -> lm.blocks.{i}.mlp.{gate,up,down}_proj.weight
    model.layers.{i}.input_layernorm.weight                -> lm.blocks.{i}.attn_norm.weight
    model.layers.{i}.post_attention_layernorm.weight       -> lm.blocks.{i}.mlp_norm.weight
    model.norm.weight / lm_head.weight                     -> lm.norm.weight / lm.lm_head.weight
    model.mm_projector.{0,2}.{weight,bias}                 -> projector.{0,2}.{weight,bias}
    model.image_newline                                    -> image_newline
    model.vision_tower.vision_tower.vision_model.(SigLIP)  -> tower.backbone.(timm ViT), see maskzoo.vision.siglip
        post_layernorm, head                               -> unused (dropped)

LLaDA-V deletes SigLIP's last encoder layer and reads the last remaining hidden state (the original
penultimate layer, ``mm_vision_select_layer = -2``) before ``post_layernorm``; the checkpoint holds the
shortened stack, so the tower here reads its last block (``layer = -1``). Images are resized to the tower's
square input (bicubic, mean = std = 0.5, SigLIP's processor). ``image_aspect_ratio = anyres`` /
``anyres_max_N`` with ``image_grid_pinpoints`` turns on LLaVA-NeXT tiling for captioning
(:mod:`maskzoo.vision.anyres`: base view, then the unpadded tile map with ``image_newline`` after each row);
otherwise an image is its one view followed by ``image_newline``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from maskzoo.core.checkpoint import build_empty, load_state_strict
from maskzoo.core.errors import UserError
from maskzoo.vision import anyres
from maskzoo.vision.model import VisionLanguageModel, VisionModelConfig
from maskzoo.vision.siglip import hf_siglip_to_timm
from maskzoo.vision.tokenizer import HFTokenizer

TOWER_PREFIX = "model.vision_tower.vision_tower.vision_model."
#: SigLIP attention heads by width, when the tower's own config.json is not available
SIGLIP_HEADS = {768: 12, 1024: 16, 1152: 16, 1536: 16}
PROMPT = "<image>\nDescribe the image."

_LM_BLOCK = {"self_attn.q_proj": "attn.q_proj", "self_attn.k_proj": "attn.k_proj", "self_attn.v_proj": "attn.v_proj",
             "self_attn.o_proj": "attn.o_proj", "mlp.gate_proj": "mlp.gate_proj", "mlp.up_proj": "mlp.up_proj",
             "mlp.down_proj": "mlp.down_proj", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "mlp_norm"}
_LM_TOP = {"model.embed_tokens.weight": "lm.embed.weight", "model.norm.weight": "lm.norm.weight",
           "lm_head.weight": "lm.lm_head.weight", "model.image_newline": "image_newline"}
_LM_RE = re.compile(r"^model\.layers\.(\d+)\.([\w.]+)\.weight$")
_TOWER_LAYER_RE = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_IGNORED = re.compile(r"(rotary_emb\.inv_freq$|^model\.vision_tower\.vision_tower\.vision_model\.(post_layernorm|head)\.)")


def is_llava_llada_config(cfg: dict[str, Any]) -> bool:
    return cfg.get("model_type") == "llava_llada"


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors`` or the shards of ``model.safetensors.index.json``; corrupt files -> UserError."""
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    files = [path / "model.safetensors"]
    if not files[0].is_file() and index.is_file():
        try:
            files = [path / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{index}: not a valid safetensors index ({e})") from None
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: weights file is missing")
        try:
            state.update(load_file(str(f)))
        except Exception as e:  # SafetensorError, OSError: truncated or corrupt
            raise UserError(f"{f}: corrupt or truncated safetensors file ({str(e).splitlines()[0][:100]})") from None
    return state


def _tower_hf_config(path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The SigLIP vision config from a local tower folder named by ``mm_vision_tower``, if there is one."""
    name = cfg.get("mm_vision_tower") or cfg.get("vision_tower") or ""
    for folder in (Path(name), path / name):
        f = folder / "config.json"
        if name and f.is_file():
            d = json.loads(f.read_text(encoding="utf-8"))
            return d.get("vision_config", d)
    return {}


def tower_spec(path: Path, cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A :class:`TowerConfig` dict for the SigLIP tower in ``state`` (a timm ViT with SigLIP's options)."""
    pe = state.get(TOWER_PREFIX + "embeddings.patch_embedding.weight")  # [D, 3, p, p]
    pos = state.get(TOWER_PREFIX + "embeddings.position_embedding.weight")  # [N, D]
    if pe is None or pos is None:
        raise UserError(f"{path}: no SigLIP vision tower under {TOWER_PREFIX}")
    width, patch = pe.shape[0], pe.shape[-1]
    grid = int(round(pos.shape[0] ** 0.5))
    depth = 1 + max(int(m.group(1)) for k in state if (m := _TOWER_LAYER_RE.match(k[len(TOWER_PREFIX):]))
                    and k.startswith(TOWER_PREFIX))
    hidden = state[TOWER_PREFIX + "encoder.layers.0.mlp.fc1.weight"].shape[0]
    hf = _tower_hf_config(path, cfg)
    heads = hf.get("num_attention_heads") or SIGLIP_HEADS.get(width)
    if heads is None:
        raise UserError(f"{path}: cannot tell the vision tower's head count; put its config.json in the folder "
                        f"named by mm_vision_tower ({cfg.get('mm_vision_tower')!r})")
    act = {"gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}.get(hf.get("hidden_act", "gelu_pytorch_tanh"))
    if act is None:
        raise UserError(f"{path}: unsupported vision activation {hf.get('hidden_act')!r}")
    size = grid * patch
    kwargs = {"embed_dim": width, "depth": depth, "num_heads": int(heads), "mlp_ratio": (hidden + 0.5) / width,
              "patch_size": patch, "img_size": size, "class_token": False, "global_pool": "", "act_layer": act}
    if abs(float(hf.get("layer_norm_eps", 1e-6)) - 1e-6) > 1e-12:  # timm's SigLIP ViTs use eps = 1e-6
        raise UserError(f"{path}: vision layer_norm_eps {hf['layer_norm_eps']} is not SigLIP's 1e-6")
    pre = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic", "resize_mode": "squash",
           "crop_pct": 1.0}
    return {"name": "timm:vit_base_patch16_siglip_224", "layer": -1, "image_size": size, "weights": None,
            "kwargs": kwargs, "preprocess": pre}


def config_from_llava_llada(path: Path, cfg: dict[str, Any], state: dict[str, torch.Tensor],
                            tok: HFTokenizer) -> VisionModelConfig:
    """VisionModelConfig from a LLaDA-V config.json; unsupported options -> UserError."""
    if cfg.get("attention_bias"):
        raise UserError(f"{path}: attention_bias=true is not the LLaDA architecture")
    if cfg.get("rope_scaling"):
        raise UserError(f"{path}: rope_scaling is not supported")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                           "intermediate_size", "mm_hidden_size") if k not in cfg]
    if missing:
        raise UserError(f"{path}/config.json: missing field(s) {missing}")
    lm = {"vocab_size": int(cfg["vocab_size"]), "d_model": int(cfg["hidden_size"]),
          "n_layers": int(cfg["num_hidden_layers"]), "n_heads": int(cfg["num_attention_heads"]),
          "n_kv_heads": int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
          "mlp_hidden": int(cfg["intermediate_size"]), "max_seq_len": int(cfg.get("max_position_embeddings", 4096)),
          "rope_theta": float(cfg.get("rope_theta", 10000.0)), "norm_eps": float(cfg.get("rms_norm_eps", 1e-5)),
          "mask_token_id": tok.mask_id, "tie_embeddings": bool(cfg.get("tie_word_embeddings", False))}
    tower = tower_spec(path, cfg, state)
    if tower["kwargs"]["embed_dim"] != int(cfg["mm_hidden_size"]):
        raise UserError(f"{path}: mm_hidden_size {cfg['mm_hidden_size']} differs from the tower width")
    tiling = anyres.from_llava_config(cfg, tower["image_size"])
    return VisionModelConfig(lm=lm, tower=tower, projector=str(cfg.get("mm_projector_type", "linear")),
                             image_token_id=tok.image_id,
                             image_newline="unpad" in str(cfg.get("mm_patch_merge_type", "flat")),
                             anyres=tiling.to_dict() if tiling else None,
                             tokenizer={"type": "hf", "file": "tokenizer.json", "specials": tok.specials,
                                        "image_token": tok.image_token},
                             template="llava_llada", prompt=PROMPT)


def key_from_llava_llada(key: str) -> str | None:
    """maskzoo name of a LLaDA-V language-model / projector tensor (None: not one of those)."""
    if key in _LM_TOP:
        return _LM_TOP[key]
    if m := _LM_RE.match(key):
        name = _LM_BLOCK.get(m.group(2))
        return None if name is None else f"lm.blocks.{m.group(1)}.{name}.weight"
    if key.startswith("model.mm_projector."):
        return "projector." + key[len("model.mm_projector."):]
    return None


def convert_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """LLaDA-V tensors -> maskzoo names (tower via :mod:`maskzoo.vision.siglip`). Returns (state, unknown)."""
    tower, unknown = hf_siglip_to_timm({k: v for k, v in state.items() if not _IGNORED.search(k)}, TOWER_PREFIX)
    out = {"tower.backbone." + k: v for k, v in tower.items()}
    for key, t in state.items():
        if key.startswith(TOWER_PREFIX) or _IGNORED.search(key):
            continue
        ours = key_from_llava_llada(key)
        if ours is None:
            unknown.append(key)
        else:
            out[ours] = t
    return out, unknown


def load_llava_llada(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                     ) -> tuple[VisionLanguageModel, HFTokenizer]:
    """(model in eval mode, tokenizer) from a LLaDA-V checkpoint directory; strict about every tensor."""
    path = Path(path)
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    tok = HFTokenizer(path / "tokenizer.json")
    raw = read_weights(path)
    vcfg = config_from_llava_llada(path, cfg, raw, tok)
    state, unknown = convert_state(raw)
    if unknown:
        raise UserError(f"{path}: unexpected tensors in a LLaDA-V checkpoint: {', '.join(sorted(unknown)[:5])}")
    model = build_empty(VisionLanguageModel, vcfg)
    load_state_strict(model, state, path, dtype)  # a tied lm_head may be absent, as in the published files
    model.checkpoint_extra = {"source_format": "llava_llada"}
    return model.to(device).eval(), tok
