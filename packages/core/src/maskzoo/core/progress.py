"""Progress on stderr: tqdm bars with rates and an ETA, and one-line status messages.

Policy (the same for every ``maskzoo`` command):

- Bars (:func:`progress`, :func:`forward_progress`) go to stderr, never stdout, with a rate in the unit that
  matters (``step/s``, ``seq/s``, ``tok/s``) and an ETA when the total is known.
- ``--quiet`` (or :func:`set_quiet`) silences bars and status lines; errors still print.
- When stderr is not a terminal (a log file, a pipe, a test), bars are off unless ``MASKZOO_PROGRESS=1``;
  ``MASKZOO_PROGRESS=0`` turns them off on a terminal too. Status lines (:func:`status`: where a model was
  written, which checkpoint was used, a final rate) are printed in both cases unless quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Process-wide default for ``quiet`` (set by ``apply_common_options`` from ``--quiet``)."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    return _quiet


def bars_enabled(quiet: bool | None = None) -> bool:
    """Whether progress bars are shown (see the module docstring)."""
    if _quiet if quiet is None else quiet:
        return False
    env = os.environ.get("MASKZOO_PROGRESS", "").strip()
    if env in ("0", "1"):
        return env == "1"
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             quiet: bool | None = None, unit_scale: bool = False, leave: bool = True) -> Any:
    """A tqdm bar on stderr over ``iterable`` (or updated by hand up to ``total``); silent when disabled.

    ``unit`` names what is counted (``"seq"``, ``"tok"``, ``"step"``); ``unit_scale=True`` writes 12.3k.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr,
                disable=not bars_enabled(quiet), leave=leave, dynamic_ncols=True)


@contextlib.contextmanager
def forward_progress(model: Any, total: int, *, desc: str, unit: str = "step", quiet: bool | None = None,
                     rows: bool = False) -> Iterator[Any]:
    """A bar advanced on every forward call of ``model`` (an ``nn.Module``) inside the block: by one, or with
    ``rows=True`` by the batch size of the call's output (sequences scored, for ``unit="seq"``).

    For code that calls the model in its own loop (``generate()``, likelihood estimates): one denoiser call per
    sampling step, so ``total=steps`` gives step/s and an ETA. The hook is removed on exit.
    """
    bar = progress(total=total, desc=desc, unit=unit, quiet=quiet)

    def hook(module: Any, inputs: Any, output: Any) -> None:
        out = getattr(output, "logits", output)
        bar.update(int(out.shape[0]) if rows and hasattr(out, "shape") and len(out.shape) else 1)

    handle = None
    if not bar.disable and hasattr(model, "register_forward_hook"):
        handle = model.register_forward_hook(hook)
    try:
        yield bar
    finally:
        if handle is not None:
            handle.remove()
        bar.close()


def status(message: str, *, quiet: bool | None = None) -> None:
    """One line on stderr, ``maskzoo: <message>`` (not when quiet)."""
    if _quiet if quiet is None else quiet:
        return
    sys.stderr.write(f"maskzoo: {message}\n")
    sys.stderr.flush()
