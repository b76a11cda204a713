"""maskzoo-protein quality figures: training curves (validation ELBO against wall time) and zero-shot variant-effect
Spearman on a deep mutational scan the models never saw.

    python bench/protein_quality.py curves runs/protein_dsm_default runs/protein_dsm_t6_8m
    python bench/protein_quality.py dms [--checkpoint dsm-pdb-small] [--elbo-variants 200]

``curves`` reads each run's ``metrics.jsonl`` (``eval/val_elbo_bits`` with ``eval/wall_s``, written by
``maskzoo protein train``) and plots bits per residue against wall-clock minutes beside the unigram entropy of the
training chains; writes ``bench/results/protein_curves.png`` and ``.json``. A resumed run's clock restarts at 0; its
times are continued from the last evaluation before the restart (the minutes between that evaluation and the restart
are left out).

``dms`` scores ``bench/data/BLAT_ECOLX_Stiffler2015.csv``: TEM-1 beta-lactamase single mutants with their fitness
at 2,500 ug/ml ampicillin (Stiffler et al. 2015, Cell 160:882; the table as distributed with fair-esm's ESM-1v
example, MIT license, positions numbered from 24). TEM-1 shares no 8-mer with any packaged PDB training or
validation chain. Spearman rho of each ``--method`` against fitness: the marginal methods on all 4,996 variants,
``elbo-diff`` (8 masks per sequence) on a fixed random subset (its cost is 8 passes per variant) together with the
marginal methods on that same subset. Nothing is tuned on this scan. Writes ``bench/results/protein_dms.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from pathlib import Path

ROOT = Path(__file__).parent
DMS = ROOT / "data" / "BLAT_ECOLX_Stiffler2015.csv"
BLAT_WT = (
    "HPETLVKVKDAEDQLGARVGYIELDLNSGKILESFRPEERFPMMSTFKVLLCGAVLSRVDAGQEQLGRRIHYSQNDLVEYSPVTEKHLTDGMTVRELCSAAITMSD"
    "NTAANLLLTTIGGPKELTAFLHNMGDHVTRLDRWEPELNEAIPNDERDTTMPAAMATTLRKLLTGELLTLASRQQLIDWMEADKVAGPLLRSALPAGWFIADKSGAG"
    "ERGSRGIIAALGPDGKPSRIVVIYTTGSQATMDERNRQIAEIGASLIKHW"
)
BLAT_OFFSET = 24


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def unigram_bits(fasta: Path) -> float:
    from collections import Counter

    from maskzoo.protein.fasta import read_fasta

    c = Counter("".join(r.seq for r in read_fasta(fasta)))
    n = sum(c.values())
    return -sum(v / n * math.log2(v / n) for v in c.values())


def curves(runs: list[str], out_png: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maskzoo.protein.training import PACKAGE_DATA

    base = unigram_bits(PACKAGE_DATA / "pdb_train.fasta")
    result: dict = {"unigram_bits_train": base, "runs": {}}
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line]
        evals = [r for r in rows if "eval/val_elbo_bits" in r]
        pts, offset, last = [], 0.0, 0.0
        for r in evals:  # a resumed run restarts its clock: continue from the last time before the restart
            if r["eval/wall_s"] < last:
                offset += last
            last = r["eval/wall_s"]
            pts.append(((offset + last) / 60, r["eval/val_elbo_bits"], r["step"]))
        name = Path(run).name
        result["runs"][name] = [{"minutes": m, "val_elbo_bits": b, "step": s} for m, b, s in pts]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.axhline(base, color="gray", linestyle="--", label=f"unigram entropy ({base:.2f} bits)")
    ax.axhline(3.7, color="gray", linestyle=":", label="goal (3.7 bits)")
    ax.set_xlabel("wall-clock time (minutes, 1 shared CPU thread)")
    ax.set_ylabel("validation ELBO (bits / residue)")
    ax.set_title("DSM on PDB chains: validation ELBO vs wall time")
    ax.set_ylim(min(3.6, ax.get_ylim()[0]), min(ax.get_ylim()[1], 5.5))
    ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    out_png.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def dms(checkpoint: str, elbo_variants: int, samples: int, seed: int) -> dict:
    import torch

    from maskzoo.protein.checkpoints import load_model
    from maskzoo.protein.variants import score_mutants

    torch.set_num_threads(1)
    rows = list(csv.DictReader(DMS.open()))
    mutants, fitness = [r["mutant"] for r in rows], [float(r["fitness_amp2500"]) for r in rows]
    model = load_model(checkpoint)
    out: dict = {"checkpoint": checkpoint, "scan": DMS.name, "variants": len(rows), "full": {}, "subset": {}}
    for method in ("masked-marginal", "wt-marginal"):
        t0 = time.perf_counter()
        s = score_mutants(model, BLAT_WT, mutants, offset_idx=BLAT_OFFSET, method=method)
        out["full"][method] = {"spearman": spearman(s, fitness), "seconds": time.perf_counter() - t0}
        print(f"{method:16s} all {len(rows)}: rho = {out['full'][method]['spearman']:.3f}", flush=True)
    idx = sorted(random.Random(seed).sample(range(len(rows)), elbo_variants))
    sub_m, sub_f = [mutants[i] for i in idx], [fitness[i] for i in idx]
    out["subset_size"], out["elbo_samples"] = elbo_variants, samples
    for method in ("masked-marginal", "wt-marginal", "elbo-diff"):
        t0 = time.perf_counter()
        s = score_mutants(model, BLAT_WT, sub_m, offset_idx=BLAT_OFFSET, method=method, samples=samples, seed=seed)
        out["subset"][method] = {"spearman": spearman(s, sub_f), "seconds": time.perf_counter() - t0}
        print(f"{method:16s} subset {elbo_variants}: rho = {out['subset'][method]['spearman']:.3f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("curves")
    c.add_argument("runs", nargs="+")
    c.add_argument("--out", default=str(ROOT / "results" / "protein_curves.png"))
    d = sub.add_parser("dms")
    d.add_argument("--checkpoint", default="dsm-pdb-small")
    d.add_argument("--elbo-variants", type=int, default=200)
    d.add_argument("--samples", type=int, default=8)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default=str(ROOT / "results" / "protein_dms.json"))
    args = ap.parse_args()
    if args.what == "curves":
        print(json.dumps(curves(args.runs, Path(args.out)), indent=2))
    else:
        result = dms(args.checkpoint, args.elbo_variants, args.samples, args.seed)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
