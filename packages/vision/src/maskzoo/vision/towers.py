"""Vision towers: any timm or open_clip image model as a feature extractor at a chosen layer.

A tower maps pixels ``[B, 3, H, W]`` to a sequence of patch features ``[B, N, C]`` taken from one block
(``layer``; negative counts from the end). LLaVA (Liu et al. 2023) and LLaDA-V (arXiv 2505.16933, SigLIP2
so400m) take the *penultimate* block's patch tokens (``layer = -2``, before the final norm, no class token).
Convolutional backbones give feature maps ``[B, C, h, w]``, flattened row-major to ``N = h * w`` tokens.

Preprocessing comes from the tower's own data config (timm ``resolve_model_data_config``; open_clip's
pretrained config for the named tag, or its defaults), with explicit overrides. Weights come only from a local
file: ``.safetensors``, or a torch file loaded with ``weights_only=True``. Nothing downloads.

Spec strings are ``"timm:<model name>"`` or ``"open_clip:<model name>[/<pretrained tag>]"``; one dict lookup
on the prefix picks the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskzoo.core.errors import UserError


@dataclass
class TowerConfig:
    """How to build a tower. ``kwargs`` go to the backend's constructor (timm ``create_model`` keyword
    arguments; open_clip ``vision_cfg`` overrides); ``preprocess`` overrides the data config
    (``mean``, ``std``, ``interpolation``, ``crop_pct``, ``resize_mode``)."""

    name: str = "timm:test_vit"
    layer: int = -2
    image_size: int | None = None
    weights: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A local weights file -> state dict; unreadable or truncated files are a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors/pickle raise many types for a corrupt file
        raise UserError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise UserError(f"{path}: not a state dict")
    return sd


# --------------------------------------------------------------------------------------------------- backends
class _TimmBackend:
    @staticmethod
    def build(name: str, cfg: TowerConfig) -> tuple[nn.Module, dict]:
        import timm

        if not timm.is_model(name):
            raise UserError(f"timm does not know a model named {name!r}")
        kwargs = {"num_classes": 0, **cfg.kwargs}
        model = None
        if cfg.image_size is not None and "img_size" not in kwargs:
            try:  # token models take the resolution; convnets do not accept it
                model = timm.create_model(name, pretrained=False, img_size=cfg.image_size, **kwargs)
            except TypeError:
                model = None
        if model is None:
            try:
                model = timm.create_model(name, pretrained=False, **kwargs)
            except TypeError as e:
                raise UserError(f"timm model {name!r}: bad keyword argument ({e})") from None
        data = timm.data.resolve_model_data_config(model)
        return model, dict(data)

    #: classifier / pooling keys of full checkpoints; towers read patch tokens of an inner block
    HEAD_PREFIXES = ("head.", "fc.", "classifier.", "attn_pool.", "fc_norm.")

    @staticmethod
    def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
        from maskzoo.vision.siglip import hf_siglip_to_timm, is_hf_siglip

        if is_hf_siglip(sd):  # a Hugging Face SigLIP / SigLIP2 model.safetensors (LLaDA-V's tower)
            sd, _ = hf_siglip_to_timm(sd)
        filt = getattr(__import__(type(model).__module__, fromlist=["x"]), "checkpoint_filter_fn", None)
        return filt(sd, model) if filt is not None else sd

    @staticmethod
    def trunk(model: nn.Module) -> nn.Module:
        return model

    @staticmethod
    def features(model: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
        return _timm_features(model, x, layer)


def _timm_features(model: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """[B, 3, H, W] -> [B, N, C] from block ``layer`` (token models: patch tokens; convnets: flattened map)."""
    try:
        out = model.forward_intermediates(x, indices=[layer], norm=False, output_fmt="NLC",
                                          intermediates_only=True)
    except (AssertionError, ValueError, TypeError):  # convnets only produce NCHW
        out = model.forward_intermediates(x, indices=[layer], intermediates_only=True)
    feat = out[0]
    if feat.ndim == 4:  # [B, C, h, w] -> [B, h*w, C]
        feat = feat.flatten(2).transpose(1, 2)
    return feat


class _OpenClipBackend:
    @staticmethod
    def build(name: str, cfg: TowerConfig) -> tuple[nn.Module, dict]:
        import open_clip
        from open_clip.model import _build_vision_tower

        model_name, _, tag = name.partition("/")
        mcfg = open_clip.get_model_config(model_name)
        if mcfg is None:
            raise UserError(f"open_clip does not know a model named {model_name!r}")
        vision_cfg = {**mcfg["vision_cfg"], **cfg.kwargs}
        if cfg.image_size is not None:
            vision_cfg["image_size"] = cfg.image_size
        tower = _build_vision_tower(mcfg["embed_dim"], vision_cfg, quick_gelu=mcfg.get("quick_gelu", False))
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        pre = open_clip.get_pretrained_cfg(model_name, tag or (tags[0] if tags else "")) or {}
        data = {
            "input_size": (3, *_pair(vision_cfg.get("image_size", 224))),
            "mean": tuple(pre.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            "std": tuple(pre.get("std", open_clip.OPENAI_DATASET_STD)),
            "interpolation": pre.get("interpolation", "bicubic"),
            "resize_mode": pre.get("resize_mode", "shortest"),
        }
        return tower, data

    HEAD_PREFIXES = ()

    @staticmethod
    def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
        if any(k.startswith("visual.") for k in sd):  # a whole CLIP checkpoint: keep the image tower
            sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
        return sd

    @staticmethod
    def trunk(model: nn.Module) -> nn.Module:
        return getattr(model, "trunk", model)

    @staticmethod
    def features(model: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
        trunk = getattr(model, "trunk", None)
        if trunk is not None:  # open_clip wraps timm (SigLIP, SigLIP2, ConvNeXt ...)
            return _timm_features(trunk, x, layer)
        try:
            out = model.forward_intermediates(x, indices=[layer], output_fmt="NLC", intermediates_only=True)
        except (AssertionError, ValueError):
            out = model.forward_intermediates(x, indices=[layer], intermediates_only=True)
        feat = out["image_intermediates"][0]
        if feat.ndim == 4:
            feat = feat.flatten(2).transpose(1, 2)
        return feat


BACKENDS = {"timm": _TimmBackend, "open_clip": _OpenClipBackend}


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _load_strict(model: nn.Module, sd: dict, source, pruned: set[str], ignore_prefixes: tuple[str, ...] = ()
                 ) -> None:
    """Load into the pruned backbone: every kept key must be present; keys of pruned blocks (``pruned``) and
    of heads (``ignore_prefixes``) may be, so a full published checkpoint and a pruned export both fit."""
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(ignore_prefixes)]
    unexpected = [k for k in unexpected if k not in pruned and not k.startswith(ignore_prefixes)]
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit the tower (missing {missing[:3]}, unexpected {unexpected[:3]})")


# ------------------------------------------------------------------------------------------------------ tower
class VisionTower(nn.Module):
    """A backbone plus the layer it is read at and its preprocessing; ``forward`` -> ``[B, N, C]``."""

    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        prefix, sep, name = cfg.name.partition(":")
        if not sep or prefix not in BACKENDS:
            raise UserError(f"tower {cfg.name!r}: write 'timm:<name>' or 'open_clip:<name>'")
        self.cfg = cfg
        self.backend = BACKENDS[prefix]
        self.backbone, data = self.backend.build(name, cfg)
        if cfg.image_size is not None:
            data["input_size"] = (3, cfg.image_size, cfg.image_size)
        self.data_config = {**data, **cfg.preprocess}
        size = self.data_config["input_size"][1:]
        full_keys = set(self.backbone.state_dict())
        try:
            self.layer = _prune(self.backend.trunk(self.backbone), cfg.layer)
            with torch.no_grad():
                probe = self.features(torch.zeros(1, 3, *size))  # [1, N, C]
        except (IndexError, ValueError, AssertionError) as e:
            raise UserError(f"tower {cfg.name!r}: cannot read features at layer {cfg.layer} ({e})") from None
        if cfg.weights:  # after pruning, so a pruned export (tower_pretrain) loads as strictly as a full file
            sd = self.backend.convert(load_state_file(cfg.weights), self.backbone)
            _load_strict(self.backbone, sd, cfg.weights, full_keys - set(self.backbone.state_dict()),
                         self.backend.HEAD_PREFIXES)
        self.num_tokens, self.out_dim = probe.shape[1], probe.shape[2]
        self._transform = None

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backend.features(self.backbone, pixels, self.layer)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] (already preprocessed) -> features [B, N, C]."""
        return self.features(pixels)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.data_config["input_size"][1:])

    def transform(self):
        """PIL image -> normalised tensor [3, H, W], from the tower's data config."""
        if self._transform is None:
            self._transform = build_transform(self.data_config)
        return self._transform

    def preprocess(self, images: list) -> torch.Tensor:
        """list of PIL images -> [B, 3, H, W]."""
        t = self.transform()
        return torch.stack([t(im.convert("RGB")) for im in images])


def _prune(trunk: nn.Module, layer: int) -> int:
    """Drop the blocks after ``layer`` (and the final norm / head): they never run. Returns the layer index
    counted from the start, which stays valid after pruning (LLaDA-V likewise deletes SigLIP's last block)."""
    if hasattr(trunk, "prune_intermediate_layers"):
        return int(trunk.prune_intermediate_layers([layer], prune_norm=True, prune_head=True)[0])
    return layer


def build_transform(data: dict):
    """Eval transform: resize (shortest side / squash), centre crop, to tensor, normalise."""
    from torchvision import transforms as T

    h, w = data["input_size"][1:]
    interp = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR,
              "nearest": T.InterpolationMode.NEAREST}[data.get("interpolation", "bicubic")]
    crop_pct = float(data.get("crop_pct", 1.0))
    if data.get("resize_mode") == "squash":
        resize = T.Resize((h, w), interpolation=interp)
    else:
        resize = T.Resize(int(round(min(h, w) / crop_pct)), interpolation=interp)
    return T.Compose([resize, T.CenterCrop((h, w)), T.ToTensor(), T.Normalize(data["mean"], data["std"])])


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)
