"""Train a character-level text model from a YAML recipe (``maskzoo text train``).

The same recipe trains the masked-diffusion model (``objective: diffusion``, the MDLM/MD4 NELBO of
:mod:`maskzoo.core.losses`) or an autoregressive baseline of identical size (``objective: autoregressive``:
the same :class:`~maskzoo.core.transformer.DiffusionTransformer` with ``causal=True`` and next-token
cross-entropy), with the same trainer and budget, so their validation bits per character compare directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskzoo.core.config import load_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import check_output_dir
from maskzoo.core.text.data import read_text, split_text
from maskzoo.core.text.model import build_text_model, save_text_model
from maskzoo.core.text.tokenizer import CharTokenizer
from maskzoo.core.training import RandomCropLoader, TrainConfig, Trainer


@dataclass
class TextArch:
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: int | None = None
    max_seq_len: int = 256
    init: str | None = None
    """start from the weights of this text model directory or zoo name (same architecture and alphabet);
    the optimizer, schedule and step count start fresh"""


@dataclass
class TextData:
    path: str | None = None
    """UTF-8 text file (default: the packaged tinyshakespeare)"""
    train_fraction: float = 0.9
    seq_len: int = 256
    batch_size: int = 32


@dataclass
class TextEval:
    windows: int = 32
    """validation windows of data.seq_len characters"""
    num_samples: int = 8
    """Monte Carlo times per window for the diffusion ELBO (antithetic)"""


@dataclass
class TextRecipe:
    objective: str = "diffusion"
    """diffusion (MDLM/MD4 NELBO, linear schedule) or autoregressive (causal baseline)"""
    schedule: str = "linear"
    model: TextArch = field(default_factory=TextArch)
    data: TextData = field(default_factory=TextData)
    eval: TextEval = field(default_factory=TextEval)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str = "runs/text"
    export: str | None = None
    """where the final model directory is written (default: run_dir/model)"""


def _diffusion_loss(tok: CharTokenizer, recipe: TextRecipe):
    from maskzoo.core.losses import DiffusionLoss
    from maskzoo.core.schedules import get_schedule

    return DiffusionLoss(tok.mask_id, schedule=get_schedule(recipe.schedule), time_sampler="antithetic")


def _ar_loss(tok: CharTokenizer, recipe: TextRecipe):
    from maskzoo.core.losses import ARLoss

    return ARLoss()


OBJECTIVES = {"diffusion": (_diffusion_loss, False), "autoregressive": (_ar_loss, True)}


def _validate(recipe: TextRecipe) -> None:
    """Every recipe field no run can use, refused before any data is read or any step is taken."""
    m, d, e = recipe.model, recipe.data, recipe.eval
    checks = [
        (m.d_model >= 1 and m.n_layers >= 1 and m.n_heads >= 1 and m.max_seq_len >= 2,
         "model.d_model, model.n_layers, model.n_heads must be >= 1 and model.max_seq_len >= 2"),
        (m.d_model % m.n_heads == 0, f"model.d_model ({m.d_model}) must be a multiple of model.n_heads ({m.n_heads})"),
        (m.mlp_hidden is None or m.mlp_hidden >= 1, "model.mlp_hidden must be >= 1"),
        (d.seq_len >= 2, "data.seq_len must be >= 2"),
        (d.batch_size >= 1, "data.batch_size must be >= 1"),
        (0 < d.train_fraction < 1, "data.train_fraction must be in (0, 1)"),
        (e.windows >= 1, "eval.windows must be >= 1"),
        (e.num_samples >= 2 and e.num_samples % 2 == 0, "eval.num_samples must be even and >= 2 (antithetic pairs)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"recipe: {msg}")
    recipe.train.validate()


def _init_weights(model, tok: CharTokenizer, source: str) -> None:
    """Copy the weights of the text model ``source`` into ``model`` (architecture and alphabet must match)."""
    from maskzoo.core.text.model import load_text_model

    init, init_tok = load_text_model(source)
    if init_tok.to_json() != tok.to_json():
        raise UserError(f"model.init={source}: its alphabet differs from this recipe's data")
    if init.config != model.config:
        raise UserError(f"model.init={source}: its architecture differs from the recipe's model block")
    model.load_state_dict(init.state_dict(), strict=True)


def train_from_recipe(config_path: str | Path | None, overrides: Sequence[str] = (), *, resume: bool = True
                      ) -> Path:
    """Run a recipe; returns the exported model directory."""
    from maskzoo.core.text.evaluate import evaluate_bits_per_char_on_ids

    recipe = load_config(TextRecipe, config_path, list(overrides))
    if recipe.objective not in OBJECTIVES:
        raise UserError(f"objective '{recipe.objective}' is not one of {', '.join(OBJECTIVES)}")
    _validate(recipe)
    if recipe.data.seq_len > recipe.model.max_seq_len:
        raise UserError(f"data.seq_len={recipe.data.seq_len} exceeds model.max_seq_len={recipe.model.max_seq_len}")
    make_loss, causal = OBJECTIVES[recipe.objective]
    out = Path(recipe.export) if recipe.export else Path(recipe.run_dir) / "model"
    check_output_dir(out, "export")  # checked now, not after hours of training

    text = read_text(recipe.data.path)
    tok = CharTokenizer.from_text(text)
    train_text, valid_text = split_text(text, recipe.data.train_fraction)
    train_ids, valid_ids = tok.encode(train_text), tok.encode(valid_text)  # [N_train], [N_valid]

    torch.manual_seed(recipe.train.seed)
    model = build_text_model(tok, causal=causal, d_model=recipe.model.d_model, n_layers=recipe.model.n_layers,
                             n_heads=recipe.model.n_heads, mlp_hidden=recipe.model.mlp_hidden,
                             max_seq_len=recipe.model.max_seq_len)
    if recipe.model.init:
        _init_weights(model, tok, recipe.model.init)
    loader = RandomCropLoader(train_ids, recipe.data.seq_len, recipe.data.batch_size, seed=recipe.train.seed)

    def eval_fn(m) -> dict[str, float]:
        r = evaluate_bits_per_char_on_ids(m, valid_ids, seq_len=recipe.data.seq_len, max_windows=recipe.eval.windows,
                                          num_samples=recipe.eval.num_samples, seed=0)
        return {"val_bpc": r["bits_per_char"], "val_bpc_stderr": r["stderr"]}

    run_dir = Path(recipe.run_dir)
    trainer = Trainer(model, make_loss(tok, recipe), loader, recipe.train, eval_fn=eval_fn, run_dir=run_dir,
                      resume=resume, run_config=recipe, export_dir=out)
    summary = trainer.fit()
    if trainer.is_main:
        with trainer.eval_weights() as final:
            save_text_model(final, tok, out, extra={"objective": recipe.objective, "train_summary": summary})
    return out
