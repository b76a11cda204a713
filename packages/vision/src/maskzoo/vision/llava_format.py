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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from maskzoo.core.checkpoint import (
    build_empty,
    load_state_strict,
    read_config,
    read_weights,
    resolve_inside,
    transformer_param_count,
)
from maskzoo.core.config import DEFAULT_MAX_PARAMS, validate_config
from maskzoo.core.errors import UserError
from maskzoo.vision import anyres
from maskzoo.vision.model import VIDEO_POOLS, VisionLanguageModel, VisionModelConfig
from maskzoo.vision.siglip import hf_siglip_to_timm
from maskzoo.vision.tokenizer import HFTokenizer

TOWER_PREFIX = "model.vision_tower.vision_tower.vision_model."
#: SigLIP attention heads by width, when the tower's own config.json is not available
SIGLIP_HEADS = {768: 12, 1024: 16, 1152: 16, 1536: 16}
#: sampler defaults of a published checkpoint: LLaDA-V's generate_demo.py (greedy low-confidence, 128 tokens; steps
#: and block length default to the length: 128 steps, one block, as the demo)
GENERATION = {"gen_length": 128, "temperature": 0.0, "remasking": "low_confidence"}
#: LLaDA-V's SigLipImageProcessor size (= crop size): the base view and every anyres tile are this many pixels
PROCESSOR_SIZE = 384
#: the tokens LLaDA-V's ``generate_with_embeds`` forbids at masked positions (ids 126080, 126081, 126346, 126347
#: of LLaDA's tokenizer), by name so that a tokenizer with other ids gets the same rule
SUPPRESSED_TOKENS = ("<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>")
STOP_TOKEN = "<|eot_id|>"  # generate_demo.py's stopping_criteria
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


@dataclass
class _LlavaLLaDAFields:
    """The fields of a LLaDA-V ``config.json`` this module reads (checked by the core's ``validate_config`` before
    anything is allocated; the file's other fields are not ours to check)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    intermediate_size: int
    mm_hidden_size: int
    num_key_value_heads: int | None = None
    max_position_embeddings: int | None = None
    rope_theta: float | None = None
    rms_norm_eps: float | None = None
    tie_word_embeddings: bool | None = None
    attention_bias: bool | None = None
    rope_scaling: dict | None = None
    mm_projector_type: str | None = None
    mm_patch_merge_type: str | None = None
    image_aspect_ratio: str | None = None
    image_grid_pinpoints: str | list | None = None
    mm_vision_tower: str | None = None
    mm_newline_position: str | None = None
    mm_spatial_pool_mode: str | None = None
    mm_spatial_pool_stride: int | None = None


_RANGES = {"hidden_size": (1, 1 << 16), "num_hidden_layers": (1, 1024), "num_attention_heads": (1, 1024),
           "num_key_value_heads": (1, 1024), "vocab_size": (1, 1 << 24), "intermediate_size": (1, 1 << 20),
           "mm_hidden_size": (1, 1 << 16), "max_position_embeddings": (1, 1 << 24), "mm_spatial_pool_stride": (1, 64)}


@dataclass
class _SiglipFields:
    """The fields of the tower's own config.json this module reads."""

    num_attention_heads: int | None = None
    image_size: int | None = None
    hidden_act: str | None = None
    layer_norm_eps: float | None = None


def _lm_param_count(cfg: dict[str, Any]) -> int:
    return transformer_param_count({"vocab_size": cfg["vocab_size"], "d_model": cfg["hidden_size"],
                                    "n_layers": cfg["num_hidden_layers"], "n_heads": cfg["num_attention_heads"],
                                    "n_kv_heads": cfg.get("num_key_value_heads"),
                                    "mlp_hidden": cfg["intermediate_size"],
                                    "tie_embeddings": bool(cfg.get("tie_word_embeddings"))})


def validate_llava_llada_config(path: Path, cfg: dict[str, Any]) -> None:
    """Every field this module reads: right type, finite, in range, and a plausible total size (UserError naming
    the field, before any tensor is read or allocated)."""
    validate_config(_LlavaLLaDAFields, cfg, f"{path / 'config.json'}", allow_unknown=True, ranges=_RANGES,
                    param_count=_lm_param_count, max_params=DEFAULT_MAX_PARAMS)


def is_llava_llada_config(cfg: dict[str, Any]) -> bool:
    return cfg.get("model_type") == "llava_llada"


def _tower_hf_config(path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The SigLIP vision config from the tower folder named by ``mm_vision_tower`` when that folder is inside the
    checkpoint (a hub name such as ``google/siglip2-so400m-patch14-384`` is not a folder: {}); a name that
    points outside the checkpoint is refused."""
    name = cfg.get("mm_vision_tower") or cfg.get("vision_tower") or ""
    if not name:
        return {}
    f = resolve_inside(path, str(Path(name) / "config.json"), "mm_vision_tower")
    if not f.is_file():
        return {}
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{f}: not valid JSON ({e})") from None
    d = d.get("vision_config", d) if isinstance(d, dict) else None
    if not isinstance(d, dict):
        raise UserError(f"{f}: expected a JSON object")
    validate_config(_SiglipFields, d, str(f), allow_unknown=True, ranges={"image_size": (1, 16384),
                                                                          "num_attention_heads": (1, 1024)})
    return d


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
    size = int(hf.get("image_size") or PROCESSOR_SIZE)  # LLaDA-V's SigLipImageProcessor: 384 x 384
    if size // patch != grid:  # the stride-p convolution ignores the last ``size % p`` pixels (384 = 27 * 14 + 6)
        raise UserError(f"{path}: {pos.shape[0]} vision positions do not fit {size}-px views in {patch}-px patches")
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
    vocab = lm_vocab_size(path, cfg, tok)
    lm = {"vocab_size": vocab, "d_model": int(cfg["hidden_size"]),
          "n_layers": int(cfg["num_hidden_layers"]), "n_heads": int(cfg["num_attention_heads"]),
          "n_kv_heads": int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
          "mlp_hidden": int(cfg["intermediate_size"]), "max_seq_len": int(cfg.get("max_position_embeddings", 4096)),
          "rope_theta": float(cfg.get("rope_theta", 10000.0)), "norm_eps": float(cfg.get("rms_norm_eps", 1e-5)),
          "mask_token_id": tok.mask_id, "tie_embeddings": bool(cfg.get("tie_word_embeddings", False))}
    tower = tower_spec(path, cfg, state)
    if tower["kwargs"]["embed_dim"] != int(cfg["mm_hidden_size"]):
        raise UserError(f"{path}: mm_hidden_size {cfg['mm_hidden_size']} differs from the tower width")
    tiling = anyres.from_llava_config(cfg, tower["image_size"])
    pool = str(cfg.get("mm_spatial_pool_mode") or "bilinear")
    if pool not in VIDEO_POOLS:
        raise UserError(f"{path / 'config.json'}: field 'mm_spatial_pool_mode' = {pool!r} is not one of {VIDEO_POOLS}")
    return VisionModelConfig(lm=lm, tower=tower, projector=str(cfg.get("mm_projector_type", "linear")),
                             image_token_id=tok.image_id,
                             image_newline="unpad" in str(cfg.get("mm_patch_merge_type", "flat")),
                             anyres=tiling.to_dict() if tiling else None,
                             tokenizer={"type": "hf", "file": "tokenizer.json", "specials": tok.specials,
                                        "image_token": tok.image_token},
                             template="llava_llada", prompt=PROMPT,
                             suppress_tokens=[tok.token_id(t) for t in SUPPRESSED_TOKENS],
                             stop_tokens=[tok.token_id(STOP_TOKEN)],
                             video_pool=pool)


def lm_vocab_size(path: Path, cfg: dict[str, Any], tok: HFTokenizer) -> int:
    """LLaDA-V's loader calls ``model.resize_token_embeddings(len(tokenizer))``: the model keeps the tokenizer's
    ``len`` rows of its embedding and output head (126349 of LLaDA's 126464), so the logits have that many
    columns. A tokenizer longer than the stored vocabulary would get randomly initialised rows: refused."""
    if tok.vocab_size > int(cfg["vocab_size"]):
        raise UserError(f"{path}: the tokenizer has {tok.vocab_size} tokens, more than the model's vocab_size "
                        f"{cfg['vocab_size']} (LLaDA-V would add untrained rows)")
    return tok.vocab_size


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
    cfg = read_config(path)
    validate_llava_llada_config(path, cfg)
    tok = HFTokenizer(resolve_inside(path, "tokenizer.json", "tokenizer file"))
    raw = read_weights(path)
    vcfg = config_from_llava_llada(path, cfg, raw, tok)
    state, unknown = convert_state(raw)
    if unknown:
        raise UserError(f"{path}: unexpected tensors in a LLaDA-V checkpoint: {', '.join(sorted(unknown)[:5])}")
    vocab = vcfg.lm["vocab_size"]
    for key in ("lm.embed.weight", "lm.lm_head.weight"):  # resize_token_embeddings(len(tokenizer)), see above
        if key in state and state[key].shape[0] != int(cfg["vocab_size"]):
            raise UserError(f"{path}: {key} has {state[key].shape[0]} rows, config.json says {cfg['vocab_size']}")
        if key in state:
            state[key] = state[key][:vocab]  # [V_tok, D]
    model = build_empty(VisionLanguageModel, vcfg)
    load_state_strict(model, state, path, dtype)  # a tied lm_head may be absent, as in the published files
    model.checkpoint_extra = {"source_format": "llava_llada", "generation": dict(GENERATION)}
    return model.to(device).eval(), tok
