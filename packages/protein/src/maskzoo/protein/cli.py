"""``maskzoo protein train | generate | score | score-variants | embed | evaluate``.

Every verb is built from the shared options of ``maskzoo.core.cli`` (``--checkpoint --out --jsonl --seed --device
--threads --quiet --batch-size`` and the sampling options), so they are spelled, checked and documented as in every
other area. Without ``--checkpoint`` a command uses the embedded default (``dsm-pdb-small``); ``--checkpoint`` takes
a DSM directory, a training run directory, a fair-esm ESM-2 ``.pt`` file or a zoo name. Outputs are written
atomically; bad input is one error line (exit 2) and no output file. Progress bars and status lines go to stderr
(``--quiet`` silences them).
"""

from __future__ import annotations

import argparse
import time

from maskzoo.core.cli import (
    add_batch_size_option,
    add_checkpoint_option,
    add_common_options,
    add_generation_options,
    add_output_options,
    add_recipe_options,
    apply_common_options,
    positive_int,
    require_recipe,
    resolve_checkpoint,
    status,
)
from maskzoo.core.errors import UserError

DEFAULT_RECIPE = "apps/recipes/protein_dsm_cpu.yaml"
METHOD_NAMES = ("masked-marginal", "wt-marginal", "elbo-diff")  # = maskzoo.protein.variants.METHODS (no torch)


def register(areas: argparse._SubParsersAction) -> None:
    protein = areas.add_parser("protein", help="DSM protein models on ESM-2 (generate, score, embed, train)")
    verbs = protein.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(protein))
    verbs.required = True

    p = verbs.add_parser("train", help="train a DSM model from a YAML recipe")
    add_recipe_options(p, DEFAULT_RECIPE, default=DEFAULT_RECIPE)
    p.set_defaults(func=_train)

    # conflict_handler="resolve": protein --length also takes ranges, "natural" and fasta:PATH
    p = verbs.add_parser("generate", help="generate protein sequences (FASTA)", conflict_handler="resolve")
    add_checkpoint_option(p)
    add_generation_options(p, num=10)
    p.add_argument("--length", default=None, metavar="SPEC",
                   help="N, A-B (uniform), natural (PDB training lengths) or fasta:PATH; the binder length with "
                        "--target (default: the checkpoint's generation block, else 150)")
    p.add_argument("--template", default=None, help="fill a template: fixed residues, '_' = generate (MKT___GGL)")
    p.add_argument("--motif", action="append", default=[],
                   help="motif scaffolding: SEQ[@POS] (1-based start; random when omitted); repeatable")
    p.add_argument("--target", default=None, help="binder design: a target sequence or a one-record FASTA file")
    p.add_argument("--prefix", default="dsm", help="record id prefix (default: %(default)s)")
    add_batch_size_option(p, 16)
    add_output_options(p, jsonl=False, what="sequences (FASTA)")
    add_common_options(p)
    p.set_defaults(func=_generate)

    p = verbs.add_parser("score", help="per-sequence ELBO bits per residue (id, length, bits_per_residue)")
    p.add_argument("fasta", help="input FASTA (- for stdin); ids must be unique")
    add_checkpoint_option(p)
    p.add_argument("--samples", type=positive_int, default=16, metavar="K",
                   help="Monte Carlo masks per sequence (low-discrepancy mask counts) (default: %(default)s)")
    p.add_argument("--pll", action="store_true",
                   help="also the pseudo-log-likelihood in bits per residue (one pass per residue)")
    p.add_argument("--max-tokens", type=positive_int, default=8192, metavar="N",
                   help="token budget per forward pass (default: %(default)s)")
    add_output_options(p, what="scores (TSV: id, length, bits_per_residue[, pll_bits_per_residue])")
    add_common_options(p)
    p.set_defaults(func=_score)

    p = verbs.add_parser("score-variants", help="zero-shot variant effects (higher = predicted fitter)")
    add_checkpoint_option(p)
    p.add_argument("--sequence", required=True, help="wild type: a sequence or a one-record FASTA file")
    p.add_argument("--variants", required=True, help="CSV/TSV with a mutant column (A24C or A24C:G30T)")
    p.add_argument("--method", choices=METHOD_NAMES, default="masked-marginal",
                   help="masked-marginal (Meier et al. 2021), wt-marginal (one pass), elbo-diff (ELBO of the mutant "
                        "minus the wild type's) (default: %(default)s)")
    p.add_argument("--samples", type=positive_int, default=8, metavar="K",
                   help="masks per sequence for elbo-diff (default: %(default)s)")
    p.add_argument("--mutation-col", default="mutant", help="column holding the mutants (default: %(default)s)")
    p.add_argument("--score-col", default="score", help="name of the added column (default: %(default)s)")
    p.add_argument("--offset-idx", type=int, default=1, metavar="N",
                   help="number of the first residue in the mutant strings (default: %(default)s, 1-based)")
    add_batch_size_option(p, 16)
    add_output_options(p, jsonl=False, what="scored table (same format as --variants)")
    add_common_options(p)
    p.set_defaults(func=_score_variants)

    p = verbs.add_parser("embed", help="sequence representations (mean and optional per-residue)")
    p.add_argument("fasta", help="input FASTA; ids must be unique")
    add_checkpoint_option(p)
    p.add_argument("--out", required=True, help="output .pt, .safetensors or .npz")
    p.add_argument("--per-residue", action="store_true", help="also store per-residue vectors")
    p.add_argument("--layer", type=int, default=None, help="layer (0 = embeddings; default: final)")
    p.add_argument("--max-tokens", type=positive_int, default=8192, metavar="N",
                   help="token budget per batch (default: %(default)s)")
    add_common_options(p)
    p.set_defaults(func=_embed)

    p = verbs.add_parser("evaluate", help="compare generated sequences with natural ones; report with plots")
    p.add_argument("fasta", help="generated sequences (FASTA)")
    p.add_argument("--reference", default=None, help="natural sequences (default: packaged held-out PDB chains)")
    p.add_argument("--train", default=None, help="training set for novelty (default: packaged PDB train chains)")
    p.add_argument("--out", required=True, help="report directory (metrics.json, report.md, PNG plots)")
    p.add_argument("--probe", action="store_true", help="also run the secondary-structure linear probe")
    add_checkpoint_option(p)
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    add_common_options(p)
    p.set_defaults(func=_evaluate)


def _load(args: argparse.Namespace, device):
    from maskzoo.core.progress import bars_enabled
    from maskzoo.protein.checkpoints import load_model
    from maskzoo.protein.zoo import DEFAULT_MODEL

    t0 = time.perf_counter()
    model = load_model(resolve_checkpoint(args.checkpoint) or DEFAULT_MODEL, device=device)
    if bars_enabled():  # on a terminal: a line while the user waits (logs and pipes keep only errors and results)
        status(f"loaded {args.checkpoint or DEFAULT_MODEL} ({model.num_parameters() / 1e6:.1f} M parameters) "
               f"in {time.perf_counter() - t0:.1f} s")
    return model


def _train(args: argparse.Namespace) -> int:
    from maskzoo.core.config import load_config
    from maskzoo.protein.training import ProteinTrainRecipe, run_training

    require_recipe(args.config)
    apply_common_options(args)
    overrides = [*args.overrides, *(["train.progress=false"] if args.quiet else [])]
    recipe = load_config(ProteinTrainRecipe, args.config, overrides)
    result = run_training(recipe, resume=not args.no_resume)
    where = recipe.export or f"{recipe.run_dir} (checkpoints; set export: to write a model directory)"
    status(f"done at step {int(result['step'])}; model written to {where}"
           + (f"  (try: maskzoo protein generate --checkpoint {recipe.export})" if recipe.export else ""))
    return 0


def _generate(args: argparse.Namespace) -> int:
    import random

    import torch

    from maskzoo.core.progress import forward_progress
    from maskzoo.protein import generation as G
    from maskzoo.protein.fasta import Record, write_fasta

    modes = sum(bool(x) for x in (args.template, args.motif, args.target))
    if modes > 1:
        raise UserError("--template, --motif and --target are alternatives; give one")
    if args.template:
        G.template_canvas(args.template)  # validate before loading anything
    motifs = G.parse_motifs(args.motif) if args.motif else []
    target = None
    if args.target:
        from maskzoo.protein.inputs import read_sequence_arg

        target = read_sequence_arg(args.target, "--target")
    device = apply_common_options(args)
    model = _load(args, device)
    settings, length = G.settings_from_args(args, G.model_generation_block(model))
    rng = random.Random(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    max_res = model.config.max_seq_len - 2
    if args.template:
        canvases = [G.template_canvas(args.template)] * args.num
    elif motifs:
        lengths = G.parse_length_spec(length, args.num, rng, max_res)
        canvases = [G.template_canvas(G.motif_template(motifs, n, rng)) for n in lengths]
    elif target is not None:
        lengths = G.parse_length_spec(length, args.num, rng, max_res - len(target) - 1)
        canvases = [G.binder_canvas(target, n)[0] for n in lengths]
    else:
        lengths = G.parse_length_spec(length, args.num, rng, max_res)
        canvases = [G.unconditional_canvas(n) for n in lengths]
    calls = G.count_model_calls(model, canvases, settings)
    t0 = time.perf_counter()
    with forward_progress(model, calls, desc="generating", unit="step"):
        filled = G.fill_canvases(model, canvases, settings, gen)
    seqs = G.decode_filled(filled, canvases, target)
    records = [Record(f"{args.prefix}_{i}", s, f"{args.prefix}_{i} length={len(s)} seed={args.seed}")
               for i, s in enumerate(seqs)]  # fmt: skip
    write_fasta(records, args.out)
    seconds = time.perf_counter() - t0
    n_res = sum(map(len, seqs))
    status(f"{len(seqs)} sequence(s), {n_res} residues in {seconds:.1f} s ({n_res / max(seconds, 1e-9):.0f} "
           f"residues/s; {G.describe(settings)})")
    return 0


def _score(args: argparse.Namespace) -> int:
    from maskzoo.core.cli import open_output
    from maskzoo.protein.fasta import read_fasta
    from maskzoo.protein.scoring import score_sequences

    records = read_fasta(args.fasta, unique_ids=True)
    device = apply_common_options(args)
    model = _load(args, device)
    t0 = time.perf_counter()
    scores = score_sequences(model, [r.seq for r in records], [r.id for r in records], samples=args.samples,
                             pll=args.pll, max_tokens=args.max_tokens, seed=args.seed)  # fmt: skip
    with open_output(args.out) as f:
        f.write(format_scores(scores, jsonl=args.jsonl))
    seconds = time.perf_counter() - t0
    status(f"scored {len(scores)} sequence(s) in {seconds:.1f} s ({len(scores) / max(seconds, 1e-9):.1f} seq/s, "
           f"{args.samples} masks each{', + PLL' if args.pll else ''})")
    return 0


def format_scores(scores, jsonl: bool = False) -> str:
    """``id<TAB>length<TAB>bits_per_residue[<TAB>pll_bits_per_residue]`` lines (or JSON lines)."""
    import json

    if jsonl:
        return "".join(json.dumps({k: v for k, v in vars(s).items() if v is not None}) + "\n" for s in scores)
    lines = []
    for s in scores:
        pll = f"\t{s.pll_bits_per_residue:.4f}" if s.pll_bits_per_residue is not None else ""
        lines.append(f"{s.id}\t{s.length}\t{s.bits_per_residue:.4f}{pll}\n")
    return "".join(lines)


def _score_variants(args: argparse.Namespace) -> int:
    from maskzoo.protein.tables import read_table
    from maskzoo.protein.variants import read_wild_type, score_csv

    wild_type = read_wild_type(args.sequence)
    read_table(args.variants, args.mutation_col)  # checked before the model is loaded
    device = apply_common_options(args)
    model = _load(args, device)
    t0 = time.perf_counter()
    rows = score_csv(model, wild_type, args.variants, args.out, args.mutation_col, args.score_col, args.offset_idx,
                     args.batch_size, args.method, args.samples, args.seed)  # fmt: skip
    status(f"scored {len(rows)} variant(s) by {args.method} in {time.perf_counter() - t0:.1f} s")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from maskzoo.protein.embed import WRITERS, embed_sequences, save_embeddings
    from maskzoo.protein.fasta import read_fasta

    if Path(args.out).suffix.lower() not in WRITERS:
        raise UserError(f"--out {args.out}: unknown extension; use one of {', '.join(WRITERS)}")
    records = read_fasta(args.fasta, unique_ids=True)
    device = apply_common_options(args)
    model = _load(args, device)
    from maskzoo.core.progress import progress

    with progress(total=len(records), desc="embedding", unit="seq") as bar:
        emb = embed_sequences(model, [r.seq for r in records], [r.id for r in records], args.layer,
                              args.per_residue, args.max_tokens, progress=bar.update)  # fmt: skip
    save_embeddings(emb, args.out)
    status(f"embedded {len(records)} sequence(s) into {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from maskzoo.protein.report import evaluate_command

    if Path(args.out).exists() and not Path(args.out).is_dir():  # checked before any work
        raise UserError(f"--out {args.out}: exists and is not a directory (the report is a directory)")
    apply_common_options(args)
    evaluate_command(args)
    status(f"report written to {args.out}/report.md")
    return 0
