"""``maskzoo vision train | pretrain-tower | caption``.

``maskzoo vision caption IMG... [--checkpoint DIR] [--prompt TEXT] [--jsonl]`` prints one line per image,
``path<TAB>caption`` (or ``{"image": ..., "caption": ...}`` with ``--jsonl``). Every image is read and every
caption computed before anything is written, so a bad input (exit 2, one line on stderr) leaves no partial
output; ``--output FILE`` is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys

from maskzoo.core.cli import add_common_options, add_recipe_options, resolve_device
from maskzoo.core.errors import UserError

PROGRESS_MIN_IMAGES = 8


def register(areas: argparse._SubParsersAction) -> None:
    vision = areas.add_parser("vision", help="vision-language models: captioning, adapter training (LLaDA-V)")
    verbs = vision.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(vision))
    verbs.required = True

    p = verbs.add_parser("train", help="train a vision-language model / adapter from a YAML recipe")
    add_recipe_options(p, "apps/recipes/vision_scenes_captioner.yaml")
    p.set_defaults(func=_train)

    p = verbs.add_parser("pretrain-tower", help="stage 0: pre-train a tower on random-colour shape scenes")
    add_recipe_options(p, "apps/recipes/vision_scenes_tower.yaml")
    p.set_defaults(func=_pretrain_tower)

    p = verbs.add_parser("caption", help="caption images (default model: the embedded scenes captioner)")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--checkpoint", default=None, help="vision model dir, LLaDA-V dir or zoo name (default: embedded)")
    p.add_argument("--prompt", default=None, help="prompt with one <image> placeholder (default: the model's)")
    p.add_argument("--jsonl", action="store_true", help='one JSON object per image: {"image", "caption"}')
    p.add_argument("--output", default=None, help="write here (atomically) instead of stdout")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--gen-length", type=int, default=None, help="caption length in tokens (default: the model's)")
    p.add_argument("--block-length", type=int, default=None, help="semi-autoregressive block (default: one block)")
    p.add_argument("--temperature", type=float, default=None, help="0 = greedy")
    p.add_argument("--remasking", default=None, help="low_confidence, margin, entropy, random, first_hitting, ancestral")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_common_options(p)
    p.set_defaults(func=_caption)

    from maskzoo.vision.str.cli import register as register_scene_text  # read-text, train-str (helper STR)
    register_scene_text(verbs)


def _train(args: argparse.Namespace) -> int:
    from maskzoo.vision.train import train_from_recipe

    out = train_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: model written to {out}\n")
    return 0


def _pretrain_tower(args: argparse.Namespace) -> int:
    from maskzoo.vision.tower_pretrain import pretrain_tower_from_recipe

    out = pretrain_tower_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: tower weights written to {out}\n")
    return 0


def _caption(args: argparse.Namespace) -> int:
    import torch

    from maskzoo.core.fileio import atomic_open
    from maskzoo.vision.caption import Captioner, expand_paths
    from maskzoo.vision.data import check_prompt, open_image

    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    if args.prompt is not None:
        check_prompt(args.prompt, 1)
    paths = expand_paths(args.images)
    images = [open_image(p) for p in paths]  # every image is checked before any work
    device = resolve_device(args.device)
    captioner = Captioner.from_pretrained(args.checkpoint, device=str(device))
    settings = {k: v for k, v in (("steps", args.steps), ("gen_length", args.gen_length),
                                  ("block_length", args.block_length), ("temperature", args.temperature),
                                  ("remasking", args.remasking)) if v is not None}
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    progress = not args.no_progress and len(images) >= PROGRESS_MIN_IMAGES
    captions = captioner.caption(images, prompt=args.prompt, batch_size=args.batch_size, generator=gen,
                                 progress=progress, **settings)
    lines = [json.dumps({"image": str(p), "caption": c}) if args.jsonl else f"{p}\t{c}"
             for p, c in zip(paths, captions)]
    body = "\n".join(lines) + "\n"
    if args.output:
        with atomic_open(args.output, "w") as f:
            f.write(body)
    else:
        sys.stdout.write(body)
    return 0
