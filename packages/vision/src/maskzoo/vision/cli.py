"""``maskzoo vision train | pretrain-tower | caption``.

``maskzoo vision caption IMG... [--checkpoint DIR] [--prompt TEXT] [--jsonl]`` prints one line per image,
``path<TAB>caption`` (or ``{"image": ..., "caption": ...}`` with ``--jsonl``). Every image is read and every
caption computed before anything is written, so a bad input (exit 2, one line on stderr) leaves no partial
output; ``--out FILE`` is written atomically. Sampling options are the shared ones of every area (``--length
--steps --block-length --temperature --top-k --top-p --remasking``); unset ones come from the checkpoint's
``generation`` block. Progress (reading, captioning) goes to stderr unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import json

from maskzoo.core.cli import (
    add_batch_size_option,
    add_checkpoint_option,
    add_common_options,
    add_generation_options,
    add_output_options,
    add_recipe_options,
    apply_common_options,
    generation_kwargs,
    open_output,
    progress,
    resolve_checkpoint,
    run_recipe,
    status,
)


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
    add_checkpoint_option(p, what="the embedded vision-scenes-captioner; a vision model dir or a LLaDA-V dir")
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help="prompt with one <image> placeholder (default: the model's)")
    add_generation_options(p, num=None, length_fallback=16)
    add_batch_size_option(p, 32)
    add_output_options(p, what="captions (path<TAB>caption lines, or JSON lines with --jsonl)")
    add_common_options(p)
    p.set_defaults(func=_caption)

    from maskzoo.vision.str.cli import register as register_scene_text  # read-text, train-str (helper STR)
    register_scene_text(verbs)


def _train(args: argparse.Namespace) -> int:
    from maskzoo.vision.train import train_from_recipe

    return run_recipe(args, train_from_recipe, "model", "maskzoo vision caption --checkpoint {out} IMAGE")


def _pretrain_tower(args: argparse.Namespace) -> int:
    from maskzoo.vision.tower_pretrain import pretrain_tower_from_recipe

    return run_recipe(args, pretrain_tower_from_recipe, "tower weights")


def _caption(args: argparse.Namespace) -> int:
    import torch

    from maskzoo.vision.caption import FALLBACK, Captioner, expand_paths, generation_block
    from maskzoo.vision.data import check_prompt, open_image

    device = apply_common_options(args)
    if args.prompt is not None:
        check_prompt(args.prompt, 1)
    paths = expand_paths(args.images)
    images = [open_image(p) for p in progress(paths, desc="reading images", unit="img")]  # all checked first
    status("loading the model")
    captioner = Captioner.from_pretrained(resolve_checkpoint(args.checkpoint), device=str(device))
    settings = generation_kwargs(args, generation_block(captioner.model), FALLBACK)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    captions = captioner.caption(images, prompt=args.prompt, batch_size=args.batch_size, generator=gen,
                                 progress=True, **settings)
    lines = [json.dumps({"image": str(p), "caption": c}) if args.jsonl else f"{p}\t{c}"
             for p, c in zip(paths, captions)]
    with open_output(args.out) as f:
        f.write("\n".join(lines) + "\n")
    return 0
