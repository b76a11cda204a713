"""``maskzoo vision read-text IMG...`` and ``maskzoo vision train-str --config RECIPE``.

``read-text`` prints one line per image, ``path<TAB>text`` (or, with ``--jsonl``, ``{"image", "text",
"confidences", "eos_confidence"}`` with one confidence per character). Every image is read and every crop
recognised before anything is written: a bad input (exit 2, one line on stderr) leaves no partial output;
``--out FILE`` is written atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskzoo.core.cli import (
    add_batch_size_option,
    add_checkpoint_option,
    add_common_options,
    add_output_options,
    add_recipe_options,
    apply_common_options,
    open_output,
    positive_int,
    progress,
    resolve_checkpoint,
    run_recipe,
)
from maskzoo.core.errors import UserError

MODE_NAMES = ("parallel", "low_confidence", "autoregressive", "semi_autoregressive", "cloze")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def register(verbs: argparse._SubParsersAction) -> None:
    """Add the scene-text verbs to the ``maskzoo vision`` area."""
    p = verbs.add_parser("read-text", help="read the word in cropped scene-text images (MDiff4STR)")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    add_checkpoint_option(p, what="the embedded vision-str-mdiff")
    p.add_argument("--mode", default="parallel", choices=MODE_NAMES, help="inference mode (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="low_confidence steps (default 3) or cloze rounds (default 1); other modes refuse it")
    p.add_argument("--block-length", type=positive_int, default=None, metavar="N",
                   help="semi_autoregressive block length (default 4); other modes refuse it")
    add_batch_size_option(p, 64)
    add_output_options(p, what="readings (path<TAB>text lines; --jsonl adds per-character confidences)")
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
    from maskzoo.vision.str.images import load_crop
    from maskzoo.vision.str.inference import check_options, read_text
    from maskzoo.vision.str.zoo import load_str_model

    device = apply_common_options(args)
    paths = expand_images(args.images)
    images = [load_crop(p) for p in paths]  # every image is checked before any work
    model = load_str_model(resolve_checkpoint(args.checkpoint), device=device)
    if ignored := check_options(model, args.mode, {"steps": args.steps, "block_length": args.block_length}):
        raise UserError(ignored[0])
    readings = []
    bs = args.batch_size
    for lo in progress(range(0, len(images), bs), total=-(-len(images) // bs), desc="reading", unit="batch"):
        readings += read_text(model, images[lo : lo + bs], mode=args.mode, steps=args.steps,
                              block_length=args.block_length, batch_size=bs)
    if args.jsonl:
        lines = [json.dumps({"image": str(p), "text": r.text, "confidences": r.char_confidences,
                             "eos_confidence": r.eos_confidence}) for p, r in zip(paths, readings)]
    else:
        lines = [f"{p}\t{r.text}" for p, r in zip(paths, readings)]
    with open_output(args.out) as f:
        f.write("\n".join(lines) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from maskzoo.vision.str.train import train_from_recipe

    return run_recipe(args, train_from_recipe, "model", "maskzoo vision read-text --checkpoint {out} IMAGE")
