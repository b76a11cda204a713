"""``maskzoo text train | generate | eval``."""

from __future__ import annotations

import argparse
import json
import sys

from maskzoo.core.cli import add_common_options, add_recipe_options, resolve_device
from maskzoo.core.errors import UserError


def register(areas: argparse._SubParsersAction) -> None:
    text = areas.add_parser("text", help="character-level text models (tinyshakespeare)")
    verbs = text.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(text))
    verbs.required = True

    p = verbs.add_parser("train", help="train a text model from a YAML recipe")
    add_recipe_options(p, "apps/recipes/text_char_shakespeare.yaml")
    p.set_defaults(func=_train)

    p = verbs.add_parser("generate", help="generate text with a model (default: the embedded one)")
    p.add_argument("--checkpoint", default=None, help="model directory or zoo name (default: embedded)")
    p.add_argument("--prompt", default="", help="text to continue (characters must be in the alphabet)")
    p.add_argument("--num", type=int, default=1, help="number of samples")
    p.add_argument("--length", type=int, default=128, help="characters to generate")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: --length)")
    p.add_argument("--block-length", type=int, default=None, help="semi-autoregressive block (default: --length)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--remasking", default="low_confidence",
                   help="low_confidence, random, margin, entropy (see maskzoo.core.sampling)")
    p.add_argument("--out", default=None, help="write samples here instead of stdout")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per sample")
    add_common_options(p)
    p.set_defaults(func=_generate)

    p = verbs.add_parser("eval", help="bits per character on the validation split (ELBO bound for diffusion)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--text", default=None, help="evaluate on this file instead of the tinyshakespeare split")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--max-windows", type=int, default=64, help="number of validation windows")
    p.add_argument("--num-samples", type=int, default=16, help="Monte Carlo time samples per window (diffusion)")
    p.add_argument("--batch-size", type=int, default=16)
    add_common_options(p)
    p.set_defaults(func=_eval)


def _generate(args: argparse.Namespace) -> int:
    import torch

    from maskzoo.core.fileio import atomic_open
    from maskzoo.core.sampling import generate
    from maskzoo.core.text.model import load_text_model

    if args.num < 1 or args.length < 1:
        raise UserError("--num and --length must be positive")
    device = resolve_device(args.device)
    model, tok = load_text_model(args.checkpoint, device=device)
    prompt = tok.encode(args.prompt)  # [P]
    total = prompt.numel() + args.length
    if total > model.config.max_seq_len:
        raise UserError(f"prompt ({prompt.numel()}) + --length ({args.length}) = {total} characters exceeds "
                        f"the model's context of {model.config.max_seq_len}")
    steps = args.steps or args.length
    block = args.block_length or args.length
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    prompts = prompt.unsqueeze(0).expand(args.num, -1).to(device)  # [N, P]
    with torch.no_grad():
        out = generate(model, prompts, gen_length=args.length, steps=steps, block_length=block,
                       temperature=args.temperature, remasking=args.remasking, generator=gen)
    texts = [tok.decode(row) for row in out.cpu()]
    body = _format_samples(texts, args.prompt, jsonl=args.jsonl)
    if args.out:
        with atomic_open(args.out, "w") as f:
            f.write(body)
    else:
        sys.stdout.write(body)
    return 0


def _format_samples(texts: list[str], prompt: str, *, jsonl: bool) -> str:
    """JSON lines, or plain text; several plain samples (which contain newlines) each get a header line."""
    if jsonl:
        return "".join(json.dumps({"sample": i, "prompt": prompt, "text": t}) + "\n" for i, t in enumerate(texts))
    if len(texts) == 1:
        return texts[0] + "\n"
    return "".join(f"=== sample {i} ===\n{t}\n" for i, t in enumerate(texts))


def _eval(args: argparse.Namespace) -> int:
    from maskzoo.core.text.evaluate import evaluate_bits_per_char
    from maskzoo.core.text.model import load_text_model

    device = resolve_device(args.device)
    model, tok = load_text_model(args.checkpoint, device=device)
    result = evaluate_bits_per_char(model, tok, text_path=args.text, seq_len=args.seq_len,
                                    max_windows=args.max_windows, num_samples=args.num_samples,
                                    batch_size=args.batch_size, seed=args.seed)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _train(args: argparse.Namespace) -> int:
    from maskzoo.core.text.train import train_from_recipe

    train_from_recipe(args.config, args.overrides, resume=not args.no_resume)
    return 0
