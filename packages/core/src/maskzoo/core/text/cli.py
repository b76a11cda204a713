"""``maskzoo text train | generate | eval`` (built from the shared options of :mod:`maskzoo.core.cli`)."""

from __future__ import annotations

import argparse
import json
import time

from maskzoo.core.cli import (
    add_batch_size_option,
    add_checkpoint_option,
    add_common_options,
    add_generation_options,
    add_output_options,
    add_recipe_options,
    apply_common_options,
    forward_progress,
    generation_kwargs,
    open_output,
    positive_int,
    run_recipe,
    status,
)


def register(areas: argparse._SubParsersAction) -> None:
    """Add the ``text`` area (no heavy imports here: ``maskzoo --help`` stays fast)."""
    text = areas.add_parser("text", help="character-level text models (tinyshakespeare)",
                            description="Character-level masked-diffusion text models; the embedded default is "
                                        "text-char-shakespeare.")
    verbs = text.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(text))
    verbs.required = True

    p = verbs.add_parser("train", help="train a text model from a YAML recipe")
    add_recipe_options(p, "apps/recipes/text_char_shakespeare.yaml",
                       default="apps/recipes/text_char_shakespeare.yaml")
    p.set_defaults(func=_train)

    p = verbs.add_parser("generate", help="generate text (default: the embedded model and its sampling settings)",
                         description="Continue --prompt. Sampling settings not given come from the checkpoint's "
                                     "generation block (config.json), then the built-in defaults.")
    add_checkpoint_option(p)
    p.add_argument("--prompt", default="", help="text to continue; characters must be in the model's alphabet "
                                                "(default: empty)")
    add_generation_options(p, length_fallback=128, length_unit="characters")
    add_output_options(p, what="samples")
    add_common_options(p)
    p.set_defaults(func=_generate)

    p = verbs.add_parser("eval", help="bits per character on the validation split (ELBO bound for diffusion)")
    add_checkpoint_option(p)
    p.add_argument("--text", default=None, metavar="FILE",
                   help="evaluate on this UTF-8 file instead of the tinyshakespeare validation split")
    p.add_argument("--seq-len", type=positive_int, default=256, metavar="N",
                   help="window length in characters (default: %(default)s)")
    p.add_argument("--max-windows", type=positive_int, default=64, metavar="N",
                   help="number of validation windows (default: %(default)s)")
    p.add_argument("--num-samples", type=positive_int, default=16, metavar="K",
                   help="Monte Carlo draws per window for the diffusion ELBO, an even number (antithetic pairs) "
                        "(default: %(default)s)")
    add_batch_size_option(p, 16)
    add_output_options(p, jsonl=False, what="result (one JSON line)")
    add_common_options(p)
    p.set_defaults(func=_eval)


def _generate(args: argparse.Namespace) -> int:
    import torch

    from maskzoo.core.text.pipeline import TEXT_FALLBACK, load_pipeline

    device = apply_common_options(args)
    pipe = load_pipeline(args.checkpoint, device=device)
    kwargs = generation_kwargs(args, pipe.generation, TEXT_FALLBACK)
    prompt = pipe.encode(args.prompt)  # [P]; an unknown character is a UserError
    pipe.context_check(prompt.numel(), kwargs["gen_length"])
    gen = torch.Generator(device=device).manual_seed(args.seed)
    t0 = time.perf_counter()
    with forward_progress(pipe.model, kwargs["steps"], desc="generating"):
        texts = pipe.generate(args.prompt, num=args.num, generator=gen, **kwargs)
    seconds = time.perf_counter() - t0
    with open_output(args.out) as f:
        f.write(_format_samples(texts, args.prompt, jsonl=args.jsonl))
    chars = args.num * kwargs["gen_length"]
    status(f"{args.num} sample(s) x {kwargs['gen_length']} characters in {seconds:.1f} s "
           f"({chars / max(seconds, 1e-9):.0f} characters/s; {_describe(kwargs)})")
    return 0


def _describe(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "gen_length")


def _format_samples(texts: list[str], prompt: str, *, jsonl: bool) -> str:
    """JSON lines, or plain text; several plain samples (which contain newlines) each get a header line."""
    if jsonl:
        return "".join(json.dumps({"sample": i, "prompt": prompt, "text": t}) + "\n" for i, t in enumerate(texts))
    if len(texts) == 1:
        return texts[0] + "\n"
    return "".join(f"=== sample {i} ===\n{t}\n" for i, t in enumerate(texts))


def _eval(args: argparse.Namespace) -> int:
    from maskzoo.core.errors import UserError
    from maskzoo.core.text.evaluate import evaluate_bits_per_char
    from maskzoo.core.text.model import load_text_model

    if args.num_samples % 2:
        raise UserError(f"--num-samples must be even (draws come in antithetic pairs), got {args.num_samples}")
    device = apply_common_options(args)
    model, tok = load_text_model(args.checkpoint, device=device)
    if args.seq_len > model.config.max_seq_len:
        raise UserError(f"--seq-len {args.seq_len} exceeds the model's context of {model.config.max_seq_len}")
    t0 = time.perf_counter()
    result = evaluate_bits_per_char(model, tok, text_path=args.text, seq_len=args.seq_len,
                                    max_windows=args.max_windows, num_samples=args.num_samples,
                                    batch_size=args.batch_size, seed=args.seed, progress=True)
    status(f"evaluated {result['windows']} windows of {args.seq_len} characters in "
           f"{time.perf_counter() - t0:.1f} s")
    with open_output(args.out) as f:
        f.write(json.dumps(result) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:

    from maskzoo.core.text.train import train_from_recipe

    return run_recipe(args, train_from_recipe, "model", "maskzoo text generate --checkpoint {out}")
