"""The ``maskzoo`` command: ``maskzoo <area> <verb> [options]``.

Installed packages add areas through the entry-point group ``maskzoo.commands``; each entry point is a function
``register(subparsers)`` that adds one area parser (``maskzoo text``, ``maskzoo protein``, ...) whose verbs set
``func`` on the parsed namespace. ``func(args) -> int | None`` runs the command. A module holding a
``register`` function must not import torch (or anything heavy) at import time: ``maskzoo --help`` loads every
area's module and should answer in well under a second; import heavy modules inside ``func``.

The shared options live in :mod:`maskzoo.core.cli_options` and are re-exported here (``add_common_options``,
``add_output_options``, ``add_generation_options``, ``generation_kwargs``, ``add_checkpoint_option``,
``resolve_checkpoint``, ``add_batch_size_option``, ``add_recipe_options``, the argparse types), as are the
progress helpers of :mod:`maskzoo.core.progress` (``progress``, ``forward_progress``, ``status``).
See packages/core/README.md, "CLI conventions for package authors".

A :class:`~maskzoo.core.errors.UserError` (or a missing file) becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from maskzoo.core.cli_options import (
    SAMPLER_CHOICES,
    add_batch_size_option,
    add_checkpoint_option,
    add_common_options,
    add_generation_options,
    add_output_options,
    add_recipe_options,
    apply_common_options,
    device_name,
    generation_kwargs,
    is_step_checkpoint,
    nonneg_float,
    nonneg_int,
    open_output,
    output_path,
    positive_float,
    positive_int,
    probability,
    require_recipe,
    resolve_checkpoint,
    resolve_device,
    run_recipe,
    seed_int,
    unit_interval,
)
from maskzoo.core.errors import UserError
from maskzoo.core.progress import forward_progress, progress, status

__all__ = [
    "SAMPLER_CHOICES",
    "add_batch_size_option",
    "add_checkpoint_option",
    "add_common_options",
    "add_generation_options",
    "add_output_options",
    "add_recipe_options",
    "apply_common_options",
    "require_recipe",
    "run_recipe",
    "build_parser",
    "device_name",
    "forward_progress",
    "generation_kwargs",
    "is_step_checkpoint",
    "main",
    "nonneg_float",
    "nonneg_int",
    "open_output",
    "output_path",
    "positive_float",
    "positive_int",
    "probability",
    "progress",
    "resolve_checkpoint",
    "resolve_device",
    "seed_int",
    "status",
    "unit_interval",
]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written; does not expand lazy choices (the sampler list would import torch)."""

    def _expand_help(self, action: argparse.Action) -> str:
        if isinstance(action.choices, type(SAMPLER_CHOICES)):
            action = copy.copy(action)
            action.choices = None
        return super()._expand_help(action)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (exit 2) instead of the usage block."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _version_line() -> str:
    """``maskzoo-core X`` plus every installed area's distribution and version."""
    parts = {"maskzoo-core": _dist_version("maskzoo-core")}
    for ep in entry_points(group="maskzoo.commands"):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            parts.setdefault(dist.name, dist.version)
    return ", ".join(f"{name} {v}" for name, v in parts.items())


def _summary(ep) -> str:
    dist = getattr(ep, "dist", None)
    summary = dist.metadata.get("Summary") if dist is not None else None
    return summary or f"the {ep.name} area"


def _selected_area(argv: list[str]) -> str:
    """The area named on the command line ("" when none: ``maskzoo --help``, ``maskzoo --version``)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser. ``only=None`` loads every installed area; ``only="text"`` loads just that one (and the core's
    own light areas) and lists the others by name and distribution summary without importing them (what
    ``main`` does: a command never pays for, or is broken by, another package's imports)."""
    parser = _Parser(prog="maskzoo", description="maskzoo: masked discrete diffusion models.",
                     epilog="Run 'maskzoo <area> --help' for the verbs of an area, "
                            "'maskzoo <area> <verb> --help' for their options.")
    parser.add_argument("--version", action="version", version=_version_line())
    areas = parser.add_subparsers(dest="area", metavar="<area>", parser_class=_Parser)
    areas.required = True
    for ep in sorted(entry_points(group="maskzoo.commands"), key=lambda e: e.name):
        if ep.name in areas.choices:
            continue
        dist = getattr(ep, "dist", None)
        own = dist is not None and dist.name == "maskzoo-core"  # the core's areas are light: load them for help
        if only is not None and ep.name != only and not own:
            areas.add_parser(ep.name, help=_summary(ep))
            continue
        try:
            register = ep.load()
        except ImportError as e:  # one broken plug-in must not take the other areas down
            sys.stderr.write(f"maskzoo: warning: area '{ep.name}' unavailable ({e})\n")
            continue
        before = set(areas.choices)
        register(areas)
        line = f"{dist.name} {dist.version}" if dist is not None else f"maskzoo {ep.name}"
        for name in set(areas.choices) - before:
            sub = areas.choices[name]
            if not any("--version" in a.option_strings for a in sub._actions):
                sub.add_argument("--version", action="version", version=line)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``maskzoo`` with ``argv`` (default: sys.argv); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=_selected_area(argv))
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
