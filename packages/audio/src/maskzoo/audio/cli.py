"""``maskzoo audio pretrain-encoder | pretrain-lm | train | transcribe | ask``."""

from __future__ import annotations

import argparse
import sys

from maskzoo.core.cli import add_recipe_options


def register(areas: argparse._SubParsersAction) -> None:
    audio = areas.add_parser("audio", help="audio language models: transcription, questions (DIFFA, Whisper-LLaDA)")
    verbs = audio.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(audio))
    verbs.required = True

    p = verbs.add_parser("pretrain-encoder", help="stage 0: pre-train a Whisper-shaped encoder with CTC on digits")
    add_recipe_options(p, "apps/recipes/audio_fsdd_encoder.yaml")
    p.set_defaults(func=_pretrain_encoder)

    p = verbs.add_parser("pretrain-lm", help="the frozen text LM: answer the tasks from a text rendering of audio")
    add_recipe_options(p, "apps/recipes/audio_fsdd_lm.yaml")
    p.set_defaults(func=_pretrain_lm)

    p = verbs.add_parser("train", help="train adapters (DIFFA stage 1 / 2) with the encoder and LM frozen")
    add_recipe_options(p, "apps/recipes/audio_fsdd_stage1.yaml")
    p.set_defaults(func=_train)


def _pretrain_encoder(args: argparse.Namespace) -> int:
    from maskzoo.audio.encoder_pretrain import pretrain_encoder_from_recipe

    out = pretrain_encoder_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: encoder written to {out}\n")
    return 0


def _pretrain_lm(args: argparse.Namespace) -> int:
    from maskzoo.audio.lm_pretrain import pretrain_lm_from_recipe

    out = pretrain_lm_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: text LM written to {out}\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from maskzoo.audio.train import train_from_recipe

    out = train_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    sys.stderr.write(f"maskzoo: audio model written to {out}\n")
    return 0
