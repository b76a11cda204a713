"""``maskzoo vision read-text IMG...`` and ``maskzoo vision train-str --config RECIPE``.

``read-text`` prints one line per image, ``path<TAB>text`` (or, with ``--jsonl``, ``{"image", "text",
"confidences", "eos_confidence"}`` with one confidence per character). Every image is read and every crop
recognised before anything is written: a bad input (exit 2, one line on stderr) leaves no partial output;
``--output FILE`` is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskzoo.core.cli import add_common_options, add_recipe_options, resolve_device
from maskzoo.core.errors import UserError

MODE_NAMES = ("parallel", "low_confidence", "autoregressive", "semi_autoregressive", "cloze")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def register(verbs: argparse._SubParsersAction) -> None:
    """Add the scene-text verbs to the ``maskzoo vision`` area."""
    p = verbs.add_parser("read-text", help="read the word in cropped scene-text images (MDiff4STR)")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--checkpoint", default=None, help="STR model dir or zoo name (default: the embedded model)")
    p.add_argument("--mode", default="parallel", choices=MODE_NAMES, help="inference mode (default: parallel)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="low_confidence steps (default 3) or cloze rounds (default 1)")
    p.add_argument("--block-length", type=_positive_int, default=None,
                   help="semi_autoregressive block length (default 4)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--jsonl", action="store_true", help="JSON lines with per-character confidences")
    p.add_argument("--output", default=None, help="write here (atomically) instead of stdout")
    add_common_options(p)
    p.set_defaults(func=_read_text)

    p = verbs.add_parser("train-str", help="train a scene-text recognition model from a YAML recipe")
    add_recipe_options(p, "apps/recipes/vision_str_mdiff.yaml")
    p.set_defaults(func=_train)


def expand_images(items: list[str]) -> list[Path]:
    """Files as given; folders expand to their image files (sorted). A folder without images is an error."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{p}: folder holds no image files")
            out.extend(found)
        else:
            out.append(p)
    return out


def _read_text(args: argparse.Namespace) -> int:
    import torch

    from maskzoo.core.fileio import atomic_open
    from maskzoo.vision.str.images import load_crop
    from maskzoo.vision.str.inference import check_mode, read_text
    from maskzoo.vision.str.zoo import load_str_model

    device = resolve_device(args.device)
    paths = expand_images(args.images)
    images = [load_crop(p) for p in paths]  # every image is checked before any work
    model = load_str_model(args.checkpoint, device=device)
    check_mode(model, args.mode)
    torch.manual_seed(args.seed)
    readings = read_text(model, images, mode=args.mode, steps=args.steps, block_length=args.block_length,
                         batch_size=args.batch_size)
    if args.jsonl:
        lines = [json.dumps({"image": str(p), "text": r.text, "confidences": r.char_confidences,
                             "eos_confidence": r.eos_confidence}) for p, r in zip(paths, readings)]
    else:
        lines = [f"{p}\t{r.text}" for p, r in zip(paths, readings)]
    body = "\n".join(lines) + "\n"
    if args.output:
        with atomic_open(args.output, "w") as f:
            f.write(body)
    else:
        sys.stdout.write(body)
    return 0


def _train(args: argparse.Namespace) -> int:
    from maskzoo.vision.str.train import train_from_recipe

    out = train_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: model written to {out}\n")
    return 0
