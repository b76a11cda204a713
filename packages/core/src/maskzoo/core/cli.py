"""The ``maskzoo`` command: ``maskzoo <area> <verb> [options]``.

Installed packages add areas through the entry-point group ``maskzoo.commands``; each entry point is a function
``register(subparsers)`` that adds one area parser (``maskzoo text``, ``maskzoo protein``, ...) whose verbs set
``func`` on the parsed namespace. ``func(args) -> int | None`` runs the command.

A :class:`~maskzoo.core.errors.UserError` (or a missing file) becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from maskzoo.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="maskzoo", description="maskzoo: masked discrete diffusion models.")
    areas = parser.add_subparsers(dest="area", metavar="<area>", parser_class=_Parser)
    areas.required = True
    for ep in sorted(entry_points(group="maskzoo.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as e:  # one broken plug-in must not take the other areas down
            sys.stderr.write(f"maskzoo: warning: area '{ep.name}' unavailable ({e})\n")
            continue
        register(areas)
    return parser


def add_common_options(p: argparse.ArgumentParser) -> None:
    """Options every generating command shares: --seed, --device."""
    p.add_argument("--seed", type=int, default=0, help="random seed (runs with the same seed repeat exactly)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def add_recipe_options(p: argparse.ArgumentParser, example: str, default: str | None = None) -> None:
    """Options every training command shares: --config (a YAML recipe), key=value overrides, --no-resume."""
    if default is None:
        p.add_argument("--config", required=True, help=f"YAML recipe, e.g. {example}")
    else:
        p.add_argument("--config", default=default, help=f"YAML recipe (default {default})")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=100")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run directory has a checkpoint")


def resolve_device(name: str):
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise UserError(f"--device {name}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:
        sys.stderr.write(f"maskzoo: error: {e}\n")
        return e.exit_code
    except FileNotFoundError as e:
        sys.stderr.write(f"maskzoo: error: no such file: {e.filename or e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("maskzoo: interrupted\n")
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
