"""Train a vision-language model from a YAML recipe (``maskzoo vision train --config ... [key=value ...]``).

Loss: LLaDA's response-only SFT objective (Nie et al. 2025 eq. 5, :meth:`DiffusionLoss.llada_sft` of the
core) with the images spliced into the prompt: for ``t ~ U(0, 1)``, ``p = (1 - 1e-3) t + 1e-3``, mask each
response token with probability ``p`` and minimise

    - (1/B) sum_b (1 / |answer_b|) sum_{i masked} log p_theta(x0_i | x_t, images) / p

Stages follow LLaDA-V (:mod:`maskzoo.vision.stages`). A model is built from the recipe (tower + projector +
fresh or pre-trained language model) or continued from ``model.init`` (a vision checkpoint, a LLaDA-V
directory or a zoo name, e.g. stage 2 from stage 1's export).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.losses import DiffusionLoss
from maskzoo.core.training import ResumableLoader, TrainConfig, Trainer
from maskzoo.vision.checkpoint import load_vision_model, save_vision_model
from maskzoo.vision.data import CaptionJsonl, Collator, LlavaConversations, SceneDataset
from maskzoo.vision.model import VisionLanguageModel, VisionModelConfig
from maskzoo.vision.stages import apply_stage, staged_param_groups
from maskzoo.vision.template import DEFAULT_PROMPT, get_template
from maskzoo.vision.tokenizer import HFTokenizer, Tokenizer, WordTokenizer


@dataclass
class TowerSpec:
    name: str = "timm:test_resnet"
    """'timm:<name>' or 'open_clip:<name>[/<tag>]'"""
    layer: int = -2
    """block whose patch features are used (LLaDA-V: -2, the penultimate)"""
    image_size: int | None = None
    weights: str | None = None
    """local weights file for the tower (nothing downloads)"""
    kwargs: Any = None
    """backend keyword arguments (timm create_model / open_clip vision_cfg), a mapping set in the YAML file"""
    preprocess: Any = None
    """data-config overrides: mean, std, interpolation, crop_pct, resize_mode (a mapping)"""


@dataclass
class LMSpec:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None
    mlp_hidden: int | None = None
    max_seq_len: int = 128


@dataclass
class ModelSpec:
    init: str | None = None
    """continue from a vision checkpoint dir, a LLaDA-V dir or a zoo name (then tower/lm/projector are ignored)"""
    lm_init: str | None = None
    """language model from a maskzoo or published LLaDA checkpoint dir (needs a matching tokenizer)"""
    tokenizer: str = "scenes"
    """'scenes' (built-in word tokenizer) or a local tokenizer.json (published models)"""
    template: str = "word"
    """chat template: word (built-in) or llada"""
    projector: str = "mlp2x_gelu"
    image_newline: bool = False
    single_view: bool = False
    """train (and export) a tiling model (LLaDA-V anyres) on one base view per image; required for such a model,
    since tiled training is not implemented"""
    tower: TowerSpec = field(default_factory=TowerSpec)
    lm: LMSpec = field(default_factory=LMSpec)


@dataclass
class DataSpec:
    kind: str = "scenes"
    """scenes (procedural, on the fly), captions (JSONL) or llava (conversation JSON)"""
    path: str | None = None
    image_folder: str | None = None
    prompt: str = DEFAULT_PROMPT
    seq_len: int = 0
    """pad every batch to this many tokens (0: the longest row of each batch)"""
    batch_size: int = 32
    scene_image_size: int = 48
    scene_count: int = 10_000_000
    scene_p_uncoloured: float = 0.0
    """fraction of training scenes drawn in off-palette colours, captioned without colour words"""


@dataclass
class StageSpec:
    stage: int = 2
    """1: projector only (tower and LM frozen); 2: projector + LM"""
    train_tower: bool = False
    tower_lr: float | None = None
    """tower learning rate (default: train.lr); scheduled in proportion to train.lr"""


@dataclass
class EvalSpec:
    scenes: int = 100
    """held-out compositional scenes captioned at each evaluation (0: no evaluation)"""
    steps: int = 16
    gen_length: int = 16


@dataclass
class VisionRecipe:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    stage: StageSpec = field(default_factory=StageSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/vision"
    export_dir: str | None = None
    """where the final model directory is written (default: run_dir/model)"""


# ------------------------------------------------------------------------------------------------ building
def build_tokenizer(spec: ModelSpec) -> Tokenizer:
    if spec.tokenizer == "scenes":
        return WordTokenizer.for_scenes()
    return HFTokenizer(spec.tokenizer)


def build_model(spec: ModelSpec, tok: Tokenizer) -> VisionLanguageModel:
    """A fresh model from the recipe (language model fresh or from ``lm_init``)."""
    from maskzoo.core.checkpoint import load_model

    lm = {"vocab_size": tok.vocab_size, "mask_token_id": tok.mask_id, **vars(spec.lm)}
    lm = {k: v for k, v in lm.items() if v is not None}
    pretrained_lm = None
    if spec.lm_init:
        pretrained_lm = load_model(spec.lm_init)
        lm = pretrained_lm.config.to_dict()
        if lm["vocab_size"] < tok.vocab_size or lm["mask_token_id"] != tok.mask_id:
            raise UserError(f"model.lm_init {spec.lm_init}: its vocabulary does not match the tokenizer")
    tower = vars(spec.tower) | {"kwargs": dict(spec.tower.kwargs or {}),
                                "preprocess": dict(spec.tower.preprocess or {})}
    cfg = VisionModelConfig(lm=lm, tower=tower,
                            projector=spec.projector, image_token_id=tok.image_id, image_newline=spec.image_newline,
                            template=get_template(spec.template).name)
    model = VisionLanguageModel(cfg)
    if pretrained_lm is not None:
        model.lm.load_state_dict(pretrained_lm.state_dict())
    return model


def build_dataset(data: DataSpec, seed: int) -> torch.utils.data.Dataset:
    if data.kind == "scenes":
        return SceneDataset("train", data.scene_count, data.prompt, seed=seed, image_size=data.scene_image_size,
                            p_uncoloured=data.scene_p_uncoloured)
    if data.path is None:
        raise UserError(f"data.kind={data.kind} needs data.path")
    builders = {"captions": lambda: CaptionJsonl(data.path, data.prompt, data.image_folder),
                "llava": lambda: LlavaConversations(data.path, data.image_folder)}
    if data.kind not in builders:
        raise UserError(f"unknown data.kind {data.kind!r}; choose scenes, captions or llava")
    return builders[data.kind]()


class VisionSFTLoss:
    """``loss_fn(model, batch)`` for the Trainer: the core's LLaDA SFT loss with ``pixel_values`` spliced in."""

    def __init__(self, mask_id: int) -> None:
        self.inner = DiffusionLoss.llada_sft(mask_id)

    def __call__(self, model, batch: dict[str, torch.Tensor]):
        pixels = batch.get("pixel_values")

        def with_images(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            return model(input_ids, pixel_values=pixels, attention_mask=attention_mask)

        loss, metrics = self.inner(with_images, {"input_ids": batch["input_ids"], "maskable": batch["maskable"]})
        return loss, {**metrics, "num_tokens": int(batch["maskable"].sum())}


def train_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *, resume: bool = True,
                      ) -> Path:
    """Run a recipe; returns the exported model directory."""
    from maskzoo.vision.caption import Captioner
    from maskzoo.vision.evaluate import evaluate_scenes

    recipe = load_config(VisionRecipe, config_path, list(overrides))
    torch.manual_seed(recipe.train.seed)
    if recipe.model.init:
        model, tok = load_vision_model(recipe.model.init)
    else:
        tok = build_tokenizer(recipe.model)
        model = build_model(recipe.model, tok)
    if model.anyres is not None:
        if not recipe.model.single_view:
            raise UserError("this model tiles images (anyres) and tiled training is not implemented: set "
                            "model.single_view=true to train and export it with one view per image")
        model.config.anyres = None
    if recipe.data.kind in ("scenes", "captions"):
        model.config.prompt = recipe.data.prompt
    counts = apply_stage(model, recipe.stage.stage, recipe.stage.train_tower)
    dataset = build_dataset(recipe.data, recipe.train.seed)
    collate = Collator(tok, get_template(model.config.template), model.tower.preprocess, model.tokens_per_image,
                       recipe.data.seq_len)
    if recipe.data.seq_len and recipe.data.seq_len > model.lm.config.max_seq_len:
        raise UserError(f"data.seq_len={recipe.data.seq_len} exceeds the model context {model.lm.config.max_seq_len}")
    loader = ResumableLoader(dataset, recipe.data.batch_size, collate, seed=recipe.train.seed,
                             shuffle=recipe.data.kind != "scenes")
    sampler = {"steps": recipe.eval.steps, "gen_length": recipe.eval.gen_length}

    def eval_fn(m: VisionLanguageModel) -> dict[str, float]:
        r = evaluate_scenes(Captioner(m, tok), "heldout", recipe.eval.scenes, **sampler)
        return {"heldout_exact": r["exact_match"], "heldout_token_acc": r["token_accuracy"]}

    use_eval = recipe.data.kind == "scenes" and recipe.eval.scenes > 0
    tower_scale = (recipe.stage.tower_lr / recipe.train.lr) if recipe.stage.tower_lr else 1.0
    run_dir = Path(recipe.run_dir)
    trainer = Trainer(model, VisionSFTLoss(model.mask_id), loader, recipe.train,
                      eval_fn=eval_fn if use_eval else None, run_dir=run_dir, resume=resume, run_config=recipe,
                      optimizer_groups=staged_param_groups(model, recipe.train, tower_scale))
    summary = trainer.fit()
    out = Path(recipe.export_dir) if recipe.export_dir else run_dir / "model"
    if trainer.is_main:
        with trainer.eval_weights() as final:
            extra = {"train_summary": summary, "stage": recipe.stage.stage, "trainable_parameters": counts,
                     "generation": sampler}
            save_vision_model(final, tok, out, extra=extra)
    return out
