"""``maskzoo audio pretrain-encoder | pretrain-lm | train | transcribe | ask``.

``maskzoo audio transcribe FILE...`` prints ``path<TAB>transcript`` per file (``--jsonl``: ``{"audio", "text"}``);
``maskzoo audio ask FILE... --question TEXT`` prints ``path<TAB>answer``. Every file is read and checked before
any decoding, and output is written only when every answer is ready (``--out FILE`` atomically), so a bad
input (exit 2, one line on stderr) leaves no partial output.
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
    run_recipe,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3")


def register(areas: argparse._SubParsersAction) -> None:
    audio = areas.add_parser("audio", help="audio language models: transcription, questions (DIFFA, Whisper-LLaDA)")
    verbs = audio.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(audio))
    verbs.required = True

    p = verbs.add_parser("pretrain-encoder", help="stage 0: pre-train a Whisper-shaped encoder on digit utterances")
    add_recipe_options(p, "apps/recipes/audio_fsdd_encoder.yaml")
    p.set_defaults(func=_pretrain_encoder)

    p = verbs.add_parser("pretrain-lm", help="the frozen text LM: answer the tasks from a text rendering of audio")
    add_recipe_options(p, "apps/recipes/audio_fsdd_lm.yaml")
    p.set_defaults(func=_pretrain_lm)

    p = verbs.add_parser("train", help="train adapters (DIFFA stage 1 / 2) with the encoder and LM frozen")
    add_recipe_options(p, "apps/recipes/audio_fsdd_stage1.yaml")
    p.set_defaults(func=_train)

    for verb, helptext in (("transcribe", "transcribe audio files (default: the embedded digit model)"),
                           ("ask", "answer a question about each audio file")):
        p = verbs.add_parser(verb, help=helptext)
        p.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg, ...) or folders")
        if verb == "ask":
            p.add_argument("--question", required=True, metavar="TEXT",
                           help='e.g. "how many digits are spoken?", "is the digit seven spoken?"')
        add_checkpoint_option(p)
        add_output_options(p, what="answers")
        add_batch_size_option(p, 16)
        add_generation_options(p, num=None, length_unit="answer tokens")
        add_common_options(p)
        p.set_defaults(func=_answer, verb_name=verb)


def _pretrain_encoder(args: argparse.Namespace) -> int:
    from maskzoo.audio.encoder_pretrain import pretrain_encoder_from_recipe

    return run_recipe(args, pretrain_encoder_from_recipe, "encoder")


def _pretrain_lm(args: argparse.Namespace) -> int:
    from maskzoo.audio.lm_pretrain import pretrain_lm_from_recipe

    return run_recipe(args, pretrain_lm_from_recipe, "text LM")


def _train(args: argparse.Namespace) -> int:
    from maskzoo.audio.train import train_from_recipe

    return run_recipe(args, train_from_recipe, "audio model", "maskzoo audio transcribe --checkpoint {out} FILE")


def expand_paths(items: list[str]) -> list[str]:
    """Files as given; a folder -> its audio files (by suffix), sorted."""
    from pathlib import Path

    from maskzoo.core.errors import UserError

    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
            if not found:
                raise UserError(f"{p}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            out += found
        else:
            out.append(item)
    return out


def _answer(args: argparse.Namespace) -> int:
    from maskzoo.audio.audio_io import read_audio
    from maskzoo.audio.checkpoint import load_audio_model
    from maskzoo.audio.inference import ask, transcribe
    from maskzoo.core.cli import apply_common_options, generation_kwargs, open_output, resolve_checkpoint

    device = apply_common_options(args)
    paths = expand_paths(args.files)
    waves = [read_audio(p) for p in paths]  # every file is checked before any work
    model = load_audio_model(resolve_checkpoint(args.checkpoint)).to(device)
    defaults = {"gen_length": model.config.gen_length, "steps": model.config.steps,
                "block_length": model.config.gen_length}
    settings = generation_kwargs(args, defaults)
    if args.verb_name == "ask":
        answers = ask(model, waves, args.question, settings, args.batch_size)
    else:
        answers = transcribe(model, waves, settings, args.batch_size)
    key = "text" if args.verb_name == "transcribe" else "answer"
    lines = [json.dumps({"audio": p, key: a}) if args.jsonl else f"{p}\t{a}" for p, a in zip(paths, answers)]
    with open_output(args.out) as f:
        f.write("\n".join(lines) + "\n")
    return 0
