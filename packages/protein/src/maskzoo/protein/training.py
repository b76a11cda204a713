"""``maskzoo protein train``: DSM training of an ESM-2 denoiser with the core's loss and Trainer.

Objective (DSM, Hallee et al. 2025, arXiv:2506.08293, which follows LLaDA, Nie et al. 2025): draw
``t ~ U(t_min, 1)`` per sequence, mask each maskable residue with probability t (linear schedule, alpha(t) = 1 - t),
and minimise

    L = (1 / N) sum_b (1 / t_b) sum_{i masked} -log p_theta(x0_i | x_t)

with ``N`` the number of maskable residues in the batch (``maskzoo.core.losses.DiffusionLoss``, normalisation
``maskable_tokens``): an unbiased estimate of the NELBO per residue, in nats. DSM's reference divides by B x L
instead; with token-budget batches of varying padding the per-residue normaliser keeps the loss scale independent
of the batch shape. <cls>, <eos> and padding are never masked; in paired data only the binder is. Token dropout
is off (see ``maskzoo.protein.model``).

Validation reports the same loss on fixed crops (deterministic: the Trainer evaluates under a seeded RNG) and
the ELBO in bits per residue with LLaDA's count estimator (``maskzoo.core.likelihood``), whose ``2 ** bits`` is an
upper bound on the perplexity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskzoo.core.errors import UserError
from maskzoo.core.training import TrainConfig, Trainer, dist_info
from maskzoo.protein.model import ESM2, ESM2Config, dsm_from_esm2

PACKAGE_DATA = Path(__file__).parent / "data"


@dataclass
class ModelSection:
    num_layers: int = 4
    embed_dim: int = 256
    attention_heads: int = 8
    max_seq_len: int = 1026
    init: str = ""
    """a fair-esm ESM-2 .pt or a DSM directory to start from ("" = random init with the sizes above)"""
    attention_backend: str = ""
    """maskzoo.core.attention backend ("" = auto: xformers on CUDA when importable, else sdpa)"""


@dataclass
class DataSection:
    train: str = "pkg:pdb_train.fasta"
    """FASTA of chains (or a CSV/TSV of target,binder pairs with paired=true); pkg:NAME = packaged data"""
    valid: str = "pkg:pdb_valid.fasta"
    paired: bool = False
    crop_len: int = 256
    """residues per training window (longer chains are cropped at random)"""
    max_tokens: int = 4096
    """token budget per batch: count x longest (padded) sequence"""
    bucket: int = 1000
    packed: bool = False
    """pack short chains into rows of crop_len + 2 tokens with a block-diagonal mask (single chains only)"""
    num_valid: int = 256
    """validation examples (the first ones of the file, cropped with a fixed seed)"""
    min_len: int = 1


@dataclass
class DiffusionSection:
    t_min: float = 1e-3
    """time floor: t ~ U(t_min, 1)"""
    time_sampler: str = "antithetic"
    """antithetic (stratified, lower variance) or uniform; both are marginally U(0, 1)"""
    normalization: str = "maskable_tokens"
    elbo_samples: int = 4
    """ELBO draws per validation sequence (0 = skip the ELBO)"""


@dataclass
class ProteinTrainRecipe:
    run_dir: str = "runs/protein_dsm"
    export: str = ""
    """write the final model (EMA weights if enabled) here as a maskzoo DSM directory ("" = don't)"""
    threads: int = 0
    """torch CPU threads (0 = torch's default)"""
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    train: TrainConfig = field(default_factory=TrainConfig)


def resolve_data_path(spec: str) -> Path:
    """``pkg:NAME`` -> the packaged file; anything else is a path."""
    p = PACKAGE_DATA / spec[4:] if spec.startswith("pkg:") else Path(spec)
    if not p.is_file():
        raise UserError(f"data file not found: {spec}")
    return p


def build_model(cfg: ModelSection) -> ESM2:
    """A fresh DSM model, or one initialised from ``init`` (token dropout turned off for diffusion)."""
    if cfg.init:
        from maskzoo.protein.checkpoints import load_model

        model = dsm_from_esm2(load_model(cfg.init))
        model.config.max_seq_len = cfg.max_seq_len
    else:
        model = ESM2(ESM2Config(cfg.num_layers, cfg.embed_dim, cfg.attention_heads, False, cfg.max_seq_len))
    model.set_attention_backend(cfg.attention_backend or None)
    return model.train()


def make_loss(cfg: DiffusionSection, mask_id: int):
    from maskzoo.core.losses import DiffusionLoss

    return DiffusionLoss(
        mask_id,
        schedule="linear",
        time_sampler=cfg.time_sampler,
        normalization=cfg.normalization,
        t_min=cfg.t_min,
    )


def make_eval_fn(batches: list[dict[str, torch.Tensor]], loss_fn, cfg: DiffusionSection, mask_id: int):
    """Validation loss and ELBO bits/perplexity per residue over fixed batches (called under a seeded RNG)."""
    from maskzoo.core.likelihood import elbo_bits_per_token

    t0 = time.perf_counter()

    def eval_fn(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        loss_sum, bits_sum, n_sum = 0.0, 0.0, 0
        for batch in batches:
            b = {k: v.to(device) for k, v in batch.items()}
            n = int(b["maskable"].sum())
            loss, _ = loss_fn(model, b)
            loss_sum += float(loss) * n
            if cfg.elbo_samples > 0:
                est = elbo_bits_per_token(
                    model, b["input_ids"], mask_id, None, num_samples=cfg.elbo_samples, maskable=b["maskable"],
                    attention_mask=b["attention_mask"], batch_size=max(1, b["input_ids"].shape[0]),
                    num_groups=min(2, cfg.elbo_samples),
                )  # fmt: skip
                bits_sum += est.bits_per_token * n
            n_sum += n
        out = {"val_loss": loss_sum / max(1, n_sum), "wall_s": time.perf_counter() - t0}
        if cfg.elbo_samples > 0:
            bits = bits_sum / max(1, n_sum)
            out.update({"val_elbo_bits": bits, "val_elbo_ppl": 2.0**bits})
        return out

    return eval_fn


def check_recipe(recipe: ProteinTrainRecipe) -> None:
    """Every setting that could only fail late (sizes, counts, the export path) checked before any work."""
    import os

    m, d, f = recipe.model, recipe.data, recipe.diffusion
    checks = [
        (recipe.threads >= 0, "threads must be >= 0"),
        (m.init or (1 <= m.num_layers <= 256), "model.num_layers must be in [1, 256]"),
        (m.init or (2 <= m.embed_dim <= 16384), "model.embed_dim must be in [2, 16384]"),
        (m.init or (1 <= m.attention_heads <= m.embed_dim and m.embed_dim % m.attention_heads == 0
                         and (m.embed_dim // m.attention_heads) % 2 == 0),
         "model.attention_heads must divide model.embed_dim into an even head size"),
        (3 <= m.max_seq_len <= 1 << 20, "model.max_seq_len must be in [3, 1048576]"),
        (d.crop_len >= 1, "data.crop_len must be >= 1"),
        (d.max_tokens >= 1, "data.max_tokens must be >= 1"),
        (d.bucket >= 1, "data.bucket must be >= 1"),
        (d.num_valid >= 0, "data.num_valid must be >= 0 (0 = every validation chain)"),
        (d.min_len >= 1, "data.min_len must be >= 1"),
        (f.elbo_samples >= 0, "diffusion.elbo_samples must be >= 0"),
        (f.time_sampler in ("antithetic", "uniform"), "diffusion.time_sampler must be antithetic or uniform"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise UserError(f"recipe: {message}")
    if recipe.export:
        p = os.path.abspath(recipe.export)
        if os.path.exists(p) and not os.path.isdir(p):
            raise UserError(f"recipe: export {recipe.export} exists and is not a directory")
        parent = os.path.dirname(p)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise UserError(f"recipe: export {recipe.export}: {parent} is not a writable directory")


def run_training(recipe: ProteinTrainRecipe, resume: bool = False) -> dict[str, float]:
    """Train as ``recipe`` says; returns the Trainer's final metrics (plus ``wall_s``)."""
    from maskzoo.protein.checkpoints import save_dsm
    from maskzoo.protein.dataset import TokenBudgetLoader, fixed_eval_batches, load_examples
    from maskzoo.protein.packing import PackedLoader

    check_recipe(recipe)
    if recipe.threads > 0:
        torch.set_num_threads(recipe.threads)
    d = recipe.data
    torch.manual_seed(recipe.train.seed)  # model init
    model = build_model(recipe.model)
    train_ex = load_examples(resolve_data_path(d.train), d.paired, d.min_len)
    info = dist_info()
    loader_cls = PackedLoader if d.packed and not d.paired else TokenBudgetLoader
    loader = loader_cls(
        train_ex, d.max_tokens, min(d.crop_len, model.config.max_seq_len - 3), seed=recipe.train.seed,
        bucket=d.bucket, rank=info.rank, world_size=info.world_size,
    )  # fmt: skip
    loss_fn = make_loss(recipe.diffusion, model.mask_id)
    eval_fn = None
    if d.valid:
        valid_ex = load_examples(resolve_data_path(d.valid), d.paired, d.min_len)
        batches = fixed_eval_batches(
            valid_ex, min(d.crop_len, model.config.max_seq_len - 3), d.max_tokens, d.num_valid
        )
        eval_fn = make_eval_fn(batches, loss_fn, recipe.diffusion, model.mask_id)
    t0 = time.perf_counter()
    trainer = Trainer(model, loss_fn, loader, recipe.train, eval_fn, run_dir=recipe.run_dir, resume=resume,
                      run_config=recipe)  # fmt: skip
    result = trainer.fit()
    if recipe.export and trainer.is_main:
        with trainer.eval_weights() as m:
            extra = {
                "training": {
                    "steps": int(result["step"]),
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "threads": torch.get_num_threads(),
                    "train_data": d.train,
                    "crop_len": d.crop_len,
                    "max_tokens": d.max_tokens,
                    **{k: float(v) for k, v in result.items() if k.startswith("eval/")},
                }
            }
            from maskzoo.protein.generation import PROTEIN_FALLBACK

            extra["generation"] = {"gen_length": 150, **PROTEIN_FALLBACK}  # defaults of generate / generate_proteins
            save_dsm(m, recipe.export, extra=extra)
    return result
