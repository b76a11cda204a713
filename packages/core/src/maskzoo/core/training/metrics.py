"""Training metrics: one JSON object per line in ``run_dir/metrics.jsonl``, and a tqdm bar on stderr.

Each training row holds ``step``, ``loss``, ``lr``, ``grad_norm``, ``tokens_per_s``, ``elapsed_s`` and the loss
function's own metrics averaged over the logging window; evaluation rows hold ``step`` and ``eval/<name>``
keys. Rows are appended and flushed line by line, so a killed run keeps every row it logged. On resume the rows
newer than the checkpoint are dropped (:meth:`MetricsLogger.truncate_after`) so the file never has duplicates.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan"/"inf": JSON has no literal for them
    return v


class MetricsLogger:
    """Appends rows to a JSONL file (no-op when ``path`` is None, e.g. on ranks other than 0)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self._f = None
        if self.path is not None:
            if self.path.exists() and not self.path.is_file():  # fail at the start, not at the first row
                raise UserError(f"{self.path}: exists and is not a regular file; the metrics log cannot go there")
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, row: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._f.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        self._f.flush()

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` greater than ``step`` (written after the checkpoint we resume from)."""
        if self.path is None or not self.path.exists():
            return
        self.close()
        keep = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= step]
        with atomic_open(self.path, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete rows of a metrics.jsonl file (a torn last line from a killed run is skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar on stderr counting optimizer updates (a silent stand-in when disabled)."""
    from tqdm.auto import tqdm

    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        file=sys.stderr,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.1 if interactive else 10.0,  # log files get a line every 10 s, not a flood
    )
