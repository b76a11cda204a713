"""CPU threads for torch: a sane default (physical cores) and one place that sets it.

torch's intra-op pool defaults to the number of *logical* CPUs it sees. On a small or shared machine that
oversubscribes the cores: on a busy 2-core machine small-model inference ran 10-25x slower with 2 threads than
with 1. The ``maskzoo`` command therefore sets the thread count explicitly:

- ``--threads N`` wins;
- else ``OMP_NUM_THREADS``, when set, is respected (torch already read it at import);
- else the number of *physical* cores this process may run on.

On a machine shared with other jobs, pass ``--threads 1`` (or export ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import os


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def physical_cores() -> int:
    """Physical cores available to this process (logical CPUs / SMT siblings; at least 1).

    Reads ``/proc/cpuinfo`` (``physical id`` + ``core id`` per logical CPU) on Linux; elsewhere the logical count.
    """
    allowed = _allowed_cpus()
    logical = len(allowed) if allowed else (os.cpu_count() or 1)
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        return max(1, logical)
    cores: set[tuple[str, str]] = set()
    cpu, phys, core = None, "0", None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpu = int(value) if value.isdigit() else None
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():  # end of one logical CPU's block
            if cpu is not None and core is not None and (allowed is None or cpu in allowed):
                cores.add((phys, core))
            cpu, phys, core = None, "0", None
    return max(1, min(len(cores), logical)) if cores else max(1, logical)


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set to a positive integer, else :func:`physical_cores`."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return physical_cores()


def set_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n`` (None: :func:`default_threads`); returns the number set."""
    import torch

    n = default_threads() if n is None else n
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n
