"""Measure an exported scenes captioner and write its MODEL_CARD.md (optionally install it as the embedded default).

    python apps/vision_model_card.py runs/vision_scenes_captioner/model [--heldout 500] [--seen 200] [--install]

The stage-0 tower run is found through the recipe's ``model.tower.weights`` (its run directory). Metrics on
procedural scenes (seed 1, disjoint from training's seed 0): exact match and token accuracy on the
held-out compositional split (every scene shows a colour-shape pair never seen in training) and on fresh scenes
of the training distribution. ``--install`` copies the model directory with its card into
``packages/vision/src/maskzoo/vision/weights/scenes-captioner`` (package data).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

import torch
import yaml

from maskzoo.core.fileio import atomic_dir, atomic_open
from maskzoo.vision import Captioner
from maskzoo.vision.evaluate import evaluate_scenes
from maskzoo.vision.scenes import HELD_OUT_PAIRS

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "packages/vision/src/maskzoo/vision/weights/scenes-captioner"


def wall_minutes(run_dir: Path, fallback_s: float) -> float:
    """Training wall time from metrics.jsonl: a resumed run restarts ``elapsed_s``; sum each segment's maximum."""
    f = run_dir / "metrics.jsonl"
    if not f.is_file():
        return fallback_s / 60
    total, last = 0.0, 0.0
    for line in f.read_text().splitlines():
        e = json.loads(line).get("elapsed_s")
        if e is None:
            continue
        if e < last:
            total += last
        last = e
    return (total + last) / 60


def tower_run(run: dict) -> dict:
    """The stage-0 run that made the tower weights named in the recipe (its config.yaml and metrics.jsonl)."""
    weights = ((run.get("model") or {}).get("tower") or {}).get("weights")
    if not weights:
        return {}
    run_dir = Path(weights).parent
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()] \
        if (run_dir / "metrics.jsonl").is_file() else []
    evals = [r for r in rows if "eval/heldout_shape_acc" in r]
    steps = max((r.get("step", 0) for r in rows), default=0)
    return {"cfg": cfg, "steps": steps, "wall_min": wall_minutes(run_dir, 0.0), "eval": evals[-1] if evals else {}}


def card(meta: dict, heldout: dict, seen: dict, n_heldout: int, n_seen: int, size_mb: float, run: dict) -> str:
    extra = meta.get("extra", {})
    summary = extra.get("train_summary", {})
    cfg = meta["config"]
    lm, tower = cfg["lm"], cfg["tower"]
    sampler = extra.get("generation", extra.get("sampler", {}))
    pairs = ", ".join(f"{c} {s}" for c, s in sorted(HELD_OUT_PAIRS))
    t0 = run.get("tower_run", {})
    t0_train = (t0.get("cfg") or {}).get("train", {})
    t0_eval = t0.get("eval", {})
    frozen = not (run.get("stage") or {}).get("train_tower", False)
    met = "met" if heldout["exact_match"] >= 0.9 else "not met"
    return f"""# vision-scenes-captioner

A small LLaDA-V style captioner (arXiv 2505.16933) of procedural scenes, shipped as maskzoo-vision's embedded
default. Made by two recipes and measured by this card's script:

    maskzoo vision pretrain-tower --config apps/recipes/vision_scenes_tower.yaml      # stage 0: the tower
    maskzoo vision train --config apps/recipes/vision_scenes_captioner.yaml           # stage 2: projector + LM
    python apps/vision_model_card.py runs/vision_scenes_captioner/model --install --findings apps/vision_card_findings.md

## Model
- Vision tower: `{tower['name']}` (timm config), pre-trained here without captions (stage 0, below) and
  {'frozen' if frozen else 'fine-tuned'} while the captioner trains; features of layer {tower['layer']} at
  {tower['image_size']} px = a 3x3 grid of feature vectors (one per scene cell).
- Projector: `{cfg['projector']}` (LLaDA-V uses `mlp2x_gelu`; see "Compositional generalisation").
- Language model: maskzoo `DiffusionTransformer`, d_model {lm['d_model']}, {lm['n_layers']} layers,
  {lm['n_heads']} heads, vocabulary {lm['vocab_size']} (built-in word tokenizer), random init.
- Files: {size_mb:.1f} MB (float32 safetensors + vocab + config).

## Data
Procedural scenes (`maskzoo.vision.scenes`): 1-4 objects on a 3x3 grid; 5 shapes x 6 colours x 2 sizes;
captions from a grammar ("a small red circle at the top left", "two large blue squares and one small white
cross"). Held-out colour-shape pairs: {pairs}. Every colour and every shape is seen in training; only these
combinations are new. No stage shows an image of a held-out pair:
- stage 0 draws each object in a uniformly random RGB colour, but never a held-out pair's shape within
  {(t0.get('cfg') or {}).get('exclusion', '?')} (RGB distance) of that pair's palette colour;
- stage 2 trains on the `train` split (scenes generated on the fly, seed 0), which never contains a held-out pair.

## Training
- Stage 0 (tower; `maskzoo.vision.tower_pretrain`, the stand-in for LLaDA-V's pre-trained SigLIP2): per grid
  cell, classify shape-or-empty and size-or-empty and regress the object's RGB colour, from the tower's cell
  feature with linear heads. {t0.get('steps', '?')} updates of batch {(t0.get('cfg') or {}).get('batch_size', '?')}, LR {t0_train.get('lr', '?')} (warm-up + cosine);
  wall time {t0.get('wall_min', 0):.1f} min. Its shape head, on one-object scenes in the palette colours: held-out
  pairs {t0_eval.get('eval/heldout_shape_acc', float('nan')):.3f}, seen pairs {t0_eval.get('eval/seen_shape_acc', float('nan')):.3f} ({(t0.get('cfg') or {}).get('eval_scenes', '?')} scenes each).
- Stage 2 (captioner): projector + language model at LR {run.get('train', {}).get('lr', '?')}, linear warm-up + cosine, tower
  {'frozen (eval mode)' if frozen else 'trainable'}; LLaDA-V's stage 1 (projector only) is skipped because the
  language model starts from random weights and has nothing to be aligned with.
- Loss: LLaDA response-only SFT (core `DiffusionLoss.llada_sft`): only caption tokens (and EOS padding) masked.
- Steps: {summary.get('step', '?')} updates of batch {(run.get('data') or {}).get('batch_size', '?')}; wall time {run.get('wall_min', 0):.1f} min.
- Both recipes ran as written except for their output paths (`run_dir`, `export_dir`, and `model.tower.weights`
  naming the stage-0 run's `tower.safetensors` there) and `train.progress=false`.
- Hardware: CPU only, 1 thread each (OMP_NUM_THREADS=1), two runs side by side on a 2-core machine
  ({platform.processor() or platform.machine()}); torch {torch.__version__}.

## Metrics (greedy, low-confidence remasking, {sampler.get('steps', '?')} steps, {sampler.get('gen_length', '?')} tokens; scenes of seed 1)
| split | scenes | exact match | token accuracy |
| --- | --- | --- | --- |
| held-out compositional (unseen colour-shape pairs) | {n_heldout} | {heldout['exact_match']:.3f} | {heldout['token_accuracy']:.3f} |
| training distribution (fresh scenes) | {n_seen} | {seen['exact_match']:.3f} | {seen['token_accuracy']:.3f} |

Exact match: the whole caption equals the reference. Token accuracy: position-wise word matches over the
longer of prediction and reference, pooled over scenes. Speed/quality against sampler steps and batch size:
`bench/bench_vision.py`, results in `bench/results/vision.json`.

## Compositional generalisation (target: 90% exact on the held-out split: {met})
Held-out exact match during training (200 scenes): {run.get('trend', '?')}.

{run.get('findings', '')}

## Limits
Toy domain: the model only knows the scene grammar's words and flat 2-D shapes on a dark background.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--heldout", type=int, default=500)
    ap.add_argument("--seen", type=int, default=200)
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--findings", default=None, help="a text file of further findings for the card")
    args = ap.parse_args()
    torch.set_num_threads(1)
    src = Path(args.model_dir)
    cap = Captioner.from_pretrained(src)
    heldout = evaluate_scenes(cap, "heldout", args.heldout)
    seen = evaluate_scenes(cap, "train", args.seen)
    print(json.dumps({"heldout": heldout, "seen": seen}))
    meta = json.loads((src / "config.json").read_text())
    run_cfg = src.parent / "config.yaml"  # the resolved recipe the trainer saved beside its run
    run = yaml.safe_load(run_cfg.read_text()) if run_cfg.is_file() else {}
    rows = [json.loads(x) for x in (src.parent / "metrics.jsonl").read_text().splitlines()] \
        if (src.parent / "metrics.jsonl").is_file() else []
    run["trend"] = ", ".join(f"{r['eval/heldout_exact']:.2f} at step {r['step']}" for r in rows
                             if "eval/heldout_exact" in r)
    run["tower_run"] = tower_run(run)
    run["findings"] = Path(args.findings).read_text().strip() if args.findings else ""
    run["wall_min"] = wall_minutes(src.parent, meta.get("extra", {}).get("train_summary", {}).get("wall_s", 0.0))
    size = sum(f.stat().st_size for f in src.iterdir() if f.is_file()) / 2**20
    with atomic_open(src / "MODEL_CARD.md", "w") as f:
        f.write(card(meta, heldout, seen, args.heldout, args.seen, size, run))
    if args.install:
        with atomic_dir(PACKAGE_WEIGHTS) as tmp:
            for name in ("config.json", "model.safetensors", "vocab.json", "MODEL_CARD.md"):
                shutil.copy2(src / name, tmp / name)
                (tmp / name).chmod(0o644)
        print(f"installed in {PACKAGE_WEIGHTS}")


if __name__ == "__main__":
    main()
