"""``maskzoo protein evaluate``: metrics of a generated set against natural chains, written as a report directory.

The directory (written atomically) holds ``metrics.json``, ``report.md`` and, unless ``--no-plots``, PNG plots:
amino-acid composition, length histograms and nearest-training-sequence identities. matplotlib is imported only
here, lazily (``pip install matplotlib`` or ``maskzoo-protein[plots]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir
from maskzoo.protein.alphabet import CANONICAL

DATA_DIR = Path(__file__).parent / "data"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plots need matplotlib: pip install matplotlib (or use --no-plots)") from None
    return plt


def plot_report(
    out: Path, generated: list[str], reference: list[str], nearest: list[float] | None
) -> list[str]:
    """Write the PNG plots into ``out``; returns their file names."""
    from maskzoo.protein.metrics import kmer_counts

    plt = _pyplot()
    files = []
    g, r = kmer_counts(generated, 1), kmer_counts(reference, 1)
    fig, ax = plt.subplots(figsize=(8, 3))
    x = np.arange(20)
    ax.bar(x - 0.2, g / g.sum(), 0.4, label="generated")
    ax.bar(x + 0.2, r / r.sum(), 0.4, label="natural")
    ax.set_xticks(x, list(CANONICAL))
    ax.set_xlabel("amino acid")
    ax.set_ylabel("frequency (fraction of residues)")
    ax.set_title("Amino-acid composition: generated vs natural")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "composition.png", dpi=100)
    plt.close(fig)
    files.append("composition.png")

    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.linspace(0, max(max(map(len, generated)), np.percentile([len(s) for s in reference], 99)), 40)
    ax.hist([len(s) for s in reference], bins=bins, density=True, alpha=0.5, label="natural")
    ax.hist([len(s) for s in generated], bins=bins, density=True, alpha=0.5, label="generated")
    ax.set_xlabel("length (residues)")
    ax.set_ylabel("density (per residue)")
    ax.set_title("Sequence lengths")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lengths.png", dpi=100)
    plt.close(fig)
    files.append("lengths.png")

    if nearest is not None:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(nearest, bins=np.linspace(0, 1, 21))
        ax.set_xlabel("identity to the nearest training chain (fraction)")
        ax.set_ylabel("generated sequences (count)")
        ax.set_title("Novelty: nearest-neighbour identity")
        fig.tight_layout()
        fig.savefig(out / "nearest_identity.png", dpi=100)
        plt.close(fig)
        files.append("nearest_identity.png")
    return files


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "met" if v else "not met"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def fixed_length(metrics: dict) -> bool:
    """All generated sequences have one length (a length distribution test would be meaningless)."""
    g = metrics["lengths"]["generated"]
    return g["min"] == g["max"]


def markdown(metrics: dict, plots: list[str]) -> str:
    """report.md: tables for the metrics, the targets and the lengths; the probe when run; the plots."""
    g, n = metrics["generated"], metrics["natural_crops"]
    rows = [
        ("1-mer JSD (bits)", "jsd_1mer"), ("2-mer JSD (bits)", "jsd_2mer"), ("3-mer JSD (bits)", "jsd_3mer"),
        ("mean pairwise identity", "diversity_mean_pairwise_identity"), ("unique fraction", "unique_fraction"),
        ("validity (canonical residues only)", "validity"), ("homopolymer run >= 5 rate", "homopolymer_run5_rate"),
        ("longest homopolymer run (mean)", "longest_run_mean"), ("low-complexity rate", "low_complexity_rate"),
    ]  # fmt: skip
    lines = ["# Generated vs natural proteins", "",
             f"{g.get('count', '?')} generated sequences against natural crops of the same lengths; both scored "
             "against the reference chains.", "",
             "| metric | generated | natural crops |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {label} | {_fmt(g.get(key))} | {_fmt(n.get(key))} |" for label, key in rows]
    if "novelty_mean" in g:
        lines.append(f"| novelty (1 - identity to the nearest training chain) | {_fmt(g['novelty_mean'])} | - |")
    lines += ["", "## Targets", "", "| target | result |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {_fmt(v)} |" for k, v in metrics["targets"].items()]
    lengths = metrics["lengths"]
    lines += ["", "## Lengths", ""]
    if fixed_length(metrics):
        lines.append(f"All generated sequences have {int(lengths['generated']['min'])} residues (fixed by the "
                     "request), so no length-distribution statistic is reported.")
    else:
        lines += ["| set | mean | std | min | median | max |", "|---|---|---|---|---|---|"]
        for name in ("generated", "reference"):
            st = lengths[name]
            lines.append(f"| {name} | {st['mean']:.1f} | {st['std']:.1f} | {st['min']:.0f} | {st['median']:.0f} "
                         f"| {st['max']:.0f} |")
        lines += ["", f"Two-sample Kolmogorov-Smirnov statistic (generated vs reference lengths): "
                      f"{lengths['ks_statistic']:.3f}"]
    if "probe" in metrics:
        pr = metrics["probe"]
        lines += ["", "## Secondary-structure linear probe (Q3, held-out PDB chains)", "",
                  "| features | Q3 |", "|---|---|",
                  f"| model embeddings | {_fmt(pr.get('q3_embedding_probe'))} |",
                  f"| one-hot window (+-3 residues) | {_fmt(pr.get('q3_onehot_window_probe'))} |",
                  f"| majority class | {_fmt(pr.get('q3_majority_class'))} |"]  # fmt: skip
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def evaluate_command(args: argparse.Namespace) -> dict:
    from maskzoo.protein.fasta import read_fasta
    from maskzoo.protein.metrics import compare_sets

    generated = [r.seq.upper() for r in read_fasta(args.fasta, validate=False)]
    reference = [r.seq for r in read_fasta(args.reference or DATA_DIR / "pdb_valid.fasta")]
    train = [r.seq for r in read_fasta(args.train or DATA_DIR / "pdb_train.fasta")]
    if not args.no_plots:
        _pyplot()  # fail early, before any work, when matplotlib is missing
    metrics = compare_sets(generated, reference, train, seed=args.seed)
    nearest = metrics.pop("_nearest_identity", None)
    if fixed_length(metrics):
        metrics["lengths"].pop("ks_statistic", None)
    if args.probe:
        from maskzoo.protein.checkpoints import load_model
        from maskzoo.protein.probe import run_probe
        from maskzoo.protein.zoo import DEFAULT_MODEL

        metrics["probe"] = run_probe(load_model(args.checkpoint or DEFAULT_MODEL), seed=args.seed)
    with atomic_dir(args.out) as tmp:
        plots = [] if args.no_plots else plot_report(tmp, generated, reference, nearest)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "report.md").write_text(markdown(metrics, plots))
    return metrics
