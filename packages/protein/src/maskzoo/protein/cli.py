"""``maskzoo protein train | generate | embed | score-variants | evaluate``.

Without ``--checkpoint`` a command uses the embedded default (``dsm-pdb-small``); ``--checkpoint`` takes a DSM
directory, a fair-esm ESM-2 ``.pt`` file or a zoo name. Outputs are written atomically; bad input is one error line
(exit 2) and no output file.
"""

from __future__ import annotations

import argparse
import sys

from maskzoo.core.cli import add_common_options, add_recipe_options, resolve_device
from maskzoo.core.errors import UserError

DEFAULT_RECIPE = "apps/recipes/protein_dsm_default.yaml"


def register(areas: argparse._SubParsersAction) -> None:
    protein = areas.add_parser("protein", help="DSM protein models on ESM-2 (generate, embed, score, train)")
    verbs = protein.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(protein))
    verbs.required = True

    p = verbs.add_parser("train", help="train a DSM model from a YAML recipe")
    add_recipe_options(p, DEFAULT_RECIPE, default=DEFAULT_RECIPE)
    p.set_defaults(func=_train)

    p = verbs.add_parser("generate", help="generate protein sequences (FASTA)")
    _model_option(p)
    p.add_argument("--num", type=int, default=10, help="number of sequences")
    p.add_argument(
        "--length",
        default="150",
        help="N, A-B (uniform), natural (PDB training lengths) or fasta:PATH; binder length with --target",
    )
    p.add_argument(
        "--template", default=None, help="fill a template: fixed residues, '_' = generate (MKT___GGL)"
    )
    p.add_argument(
        "--motif",
        action="append",
        default=[],
        help="motif scaffolding: SEQ[@POS] (1-based start; random when omitted); repeatable",
    )
    p.add_argument("--target", default=None, help="binder design: target sequence or one-record FASTA")
    _sampler_options(p)
    p.add_argument("--out", default=None, help="FASTA output file (default: stdout)")
    p.add_argument("--prefix", default="dsm", help="record id prefix")
    add_common_options(p)
    p.set_defaults(func=_generate)

    p = verbs.add_parser("embed", help="sequence representations (mean and optional per-residue)")
    p.add_argument("fasta", help="input FASTA")
    _model_option(p)
    p.add_argument("--out", required=True, help="output .pt, .safetensors or .npz")
    p.add_argument("--per-residue", action="store_true", help="also store per-residue vectors")
    p.add_argument("--layer", type=int, default=None, help="layer (0 = embeddings; default: final)")
    p.add_argument("--max-tokens", type=int, default=8192, help="token budget per batch")
    add_common_options(p)
    p.set_defaults(func=_embed)

    p = verbs.add_parser("score-variants", help="zero-shot variant effects (masked-marginal log-odds)")
    _model_option(p)
    p.add_argument("--sequence", required=True, help="wild type: a sequence or a one-record FASTA file")
    p.add_argument("--variants", required=True, help="CSV/TSV with a mutant column (A24C or A24C:G30T)")
    p.add_argument("--mutation-col", default="mutant", help="column holding the mutants (default: mutant)")
    p.add_argument("--score-col", default="score", help="name of the added column (default: score)")
    p.add_argument(
        "--offset-idx",
        type=int,
        default=1,
        help="number of the first residue in the mutant strings (default 1: 1-based)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default=None, help="output CSV (default: stdout)")
    add_common_options(p)
    p.set_defaults(func=_score)

    p = verbs.add_parser("evaluate", help="compare generated sequences with natural ones; report with plots")
    p.add_argument("fasta", help="generated sequences (FASTA)")
    p.add_argument(
        "--reference", default=None, help="natural sequences (default: packaged held-out PDB chains)"
    )
    p.add_argument(
        "--train", default=None, help="training set for novelty (default: packaged PDB train chains)"
    )
    p.add_argument("--out", required=True, help="report directory (metrics.json, report.md, PNG plots)")
    p.add_argument("--probe", action="store_true", help="also run the secondary-structure linear probe")
    _model_option(p)
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    add_common_options(p)
    p.set_defaults(func=_evaluate)


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default=None,
        help="DSM directory, fair-esm ESM-2 .pt or zoo name (default: the embedded dsm-pdb-small)",
    )


def _sampler_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: one residue per step)")
    p.add_argument(
        "--remasking",
        default="random",
        help="random (default), low_confidence, margin, entropy, first_hitting (maskzoo.core.sampling)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=16)


def _load(args: argparse.Namespace):
    import torch

    from maskzoo.protein.checkpoints import load_model
    from maskzoo.protein.zoo import DEFAULT_MODEL

    torch.manual_seed(args.seed)
    return load_model(args.checkpoint or DEFAULT_MODEL, device=resolve_device(args.device))


def _train(args: argparse.Namespace) -> int:
    from maskzoo.core.config import load_config
    from maskzoo.protein.training import ProteinTrainRecipe, run_training

    recipe = load_config(ProteinTrainRecipe, args.config, args.overrides)
    result = run_training(recipe, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo protein train: done at step {int(result['step'])}\n")
    return 0


def _generate(args: argparse.Namespace) -> int:
    import random

    import torch

    from maskzoo.protein import generation as G
    from maskzoo.protein.fasta import Record, write_fasta

    if args.num < 1:
        raise UserError("--num must be positive")
    modes = sum(bool(x) for x in (args.template, args.motif, args.target))
    if modes > 1:
        raise UserError("--template, --motif and --target are alternatives; give one")
    settings = G.SamplerSettings(
        args.steps, args.remasking, args.temperature, args.top_k, args.top_p, args.batch_size
    )
    if settings.steps is not None and settings.steps < 1:
        raise UserError("--steps must be positive")
    rng = random.Random(args.seed)
    model = _load(args)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(args.seed)
    max_res = model.config.max_seq_len - 2
    if args.template:
        G.template_canvas(args.template)  # validate before any work
        seqs = G.fill_templates(model, [args.template] * args.num, settings, gen)
    elif args.motif:
        motifs = G.parse_motifs(args.motif)
        lengths = G.parse_length_spec(args.length, args.num, rng, max_res)
        templates = [G.motif_template(motifs, n, rng) for n in lengths]
        seqs = G.fill_templates(model, templates, settings, gen)
    elif args.target:
        from maskzoo.protein.variants import read_wild_type

        target = read_wild_type(args.target)
        lengths = G.parse_length_spec(args.length, args.num, rng, max_res - len(target) - 1)
        seqs = G.design_binders(model, target, lengths, settings, gen)
    else:
        lengths = G.parse_length_spec(args.length, args.num, rng, max_res)
        seqs = G.generate_proteins(model, lengths, settings, gen)
    records = [Record(f"{args.prefix}_{i}", s, f"{args.prefix}_{i} length={len(s)} seed={args.seed}")
               for i, s in enumerate(seqs)]  # fmt: skip
    write_fasta(records, args.out)
    return 0


def _embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from maskzoo.protein.embed import WRITERS, embed_sequences, save_embeddings
    from maskzoo.protein.fasta import read_fasta

    if Path(args.out).suffix.lower() not in WRITERS:
        raise UserError(f"--out {args.out}: unknown extension; use one of {', '.join(WRITERS)}")
    records = read_fasta(args.fasta, unique_ids=True)
    model = _load(args)
    emb = embed_sequences(model, [r.seq for r in records], [r.id for r in records], args.layer, args.per_residue,
                          args.max_tokens)  # fmt: skip
    save_embeddings(emb, args.out)
    return 0


def _score(args: argparse.Namespace) -> int:
    from maskzoo.protein.variants import read_wild_type, score_csv

    wild_type = read_wild_type(args.sequence)
    model = _load(args)
    score_csv(model, wild_type, args.variants, args.out, args.mutation_col, args.score_col, args.offset_idx,
              args.batch_size)  # fmt: skip
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from maskzoo.protein.report import evaluate_command

    evaluate_command(args)
    return 0
