"""Train an STR model from a YAML recipe: ``maskzoo vision train-str --config apps/recipes/vision_str_mdiff.yaml``.

The diffusion model minimises the MDiff4STR loss (:mod:`maskzoo.vision.str.loss`) under the six-strategy noise
mix; ``model.causal: true`` trains the autoregressive baseline of the same size on the same stream with
teacher forcing. Both stream synthetic crops mixed with the real IIIT5K train crops minus the held-out
validation split (:mod:`maskzoo.vision.str.realdata`), which is read at each evaluation. The final (EMA)
weights are exported to ``export`` in the maskzoo format with the recipe and the last metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskzoo.core.checkpoint import save_model
from maskzoo.core.config import load_config, to_container
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import check_output_dir
from maskzoo.core.training import TrainConfig, Trainer
from maskzoo.vision.str.data import CropStream, DataConfig
from maskzoo.vision.str.inference import read_text
from maskzoo.vision.str.loss import ARLoss, MDiffLoss
from maskzoo.vision.str.metrics import str_metrics
from maskzoo.vision.str.model import STRConfig, STRModel
from maskzoo.vision.str.noise import NoiseMix
from maskzoo.vision.str.realdata import Crops, split_iiit5k


@dataclass
class ModelSpec:
    encoder: str = "svtrv2-tiny"
    """svtrv2-tiny | svtrv2-small | svtrv2-base | timm:<name>"""
    decoder: str = "tiny"
    """decoder preset: tiny (d 160, 2 layers), small (d 256, 3), base (d 384, 6: the paper's)"""
    causal: bool = False
    """true: the autoregressive baseline of the same size"""
    dropout: float = 0.1
    ctc_weight: float = 0.0
    """> 0: an auxiliary CTC head on the encoder, this weight on its loss (``maskzoo.vision.str.loss``)"""
    init: str | None = None
    """a zoo name or model directory whose weights start the run (same architecture); optimiser, schedule
    and step count start fresh. A checkpoint in ``run_dir`` (resume) takes precedence."""


@dataclass
class EvalSpec:
    val_crops: int = 300
    """held-out real crops read at each evaluation (0: no evaluation)"""
    mode: str = "parallel"
    """diffusion inference mode used for evaluation (the baseline always decodes autoregressively)"""


@dataclass
class STRRecipe:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseMix = field(default_factory=NoiseMix)
    eval: EvalSpec = field(default_factory=EvalSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/vision_str"
    export: str | None = None
    """where the final model directory is written (default: run_dir/model)"""


def build_model(spec: ModelSpec) -> STRModel:
    if not 0 <= spec.ctc_weight < float("inf"):
        raise UserError(f"model.ctc_weight must be a finite number >= 0, got {spec.ctc_weight}")
    return STRModel(STRConfig.from_preset(spec.decoder, encoder=spec.encoder, causal=spec.causal,
                                          dropout=spec.dropout, ctc_aux=spec.ctc_weight > 0))


def init_weights(model: STRModel, source: str) -> None:
    """Copy the weights of the STR model ``source`` into ``model``; the architectures must be equal. Dropout is
    a training setting, not architecture: a run may fine-tune with a different rate."""
    from maskzoo.vision.str.zoo import load_str_model

    init = load_str_model(source)
    ours, theirs = model.config.to_dict(), init.config.to_dict()
    diff = sorted(k for k, v in theirs.items() if ours[k] != v and k != "dropout")
    if diff:
        raise UserError(f"model.init={source}: its architecture differs from the recipe's model block ({', '.join(diff)})")
    model.load_state_dict(init.state_dict(), strict=True)


def make_eval_fn(val: Crops, mode: str):
    def eval_fn(model: STRModel) -> dict[str, float]:
        readings = read_text(model, [_pil(im) for im in val.images], mode="autoregressive" if model.causal else mode)
        m = str_metrics([r.text for r in readings], val.labels)
        return {k: v for k, v in m.items() if k != "n"}

    return eval_fn


def _pil(a: Any):
    from PIL import Image

    return Image.fromarray(a)


def train_from_recipe(config: str | Path, overrides: Sequence[str] = (), resume: bool = True) -> Path:
    """Train as the recipe says; returns the exported model directory."""
    recipe = load_config(STRRecipe, config, overrides)
    recipe.data.validate()
    recipe.noise.validate()
    if recipe.eval.val_crops < 0:
        raise UserError("eval.val_crops must be >= 0")
    out = Path(recipe.export or Path(recipe.run_dir) / "model")
    check_output_dir(out, "export")  # checked now, not after hours of training
    model = build_model(recipe.model)
    if recipe.model.init:
        init_weights(model, recipe.model.init)
    from maskzoo.vision.str.inference import check_mode

    check_mode(model, "autoregressive" if model.causal else recipe.eval.mode)
    train_crops, val_crops = split_iiit5k()
    val = val_crops.subset(list(range(min(recipe.eval.val_crops, len(val_crops)))))
    stream = CropStream(train_crops, model.alphabet, recipe.data, seed=recipe.train.seed,
                        in_chans=model.config.in_chans, size=(model.config.height, model.config.width))
    w = recipe.model.ctc_weight
    loss_fn = ARLoss(model.alphabet, w) if model.causal else MDiffLoss(model.alphabet, recipe.noise, w)
    eval_fn = make_eval_fn(val, recipe.eval.mode) if len(val) else None
    trainer = Trainer(model, loss_fn, stream, recipe.train, eval_fn, run_dir=recipe.run_dir, resume=resume,
                      run_config=recipe)
    summary = trainer.fit()
    with trainer.eval_weights() as final:
        save_model(final, out, extra={"recipe": to_container(recipe), "summary": summary})
    return out
