"""Safe file output: a reader never sees a half-written file, and no file is lost that we did not write.

One mechanism serves every command: each output file is written to a temporary sibling of our own naming,
flushed and fsynced, then moved into place with ``os.replace`` (atomic on POSIX and Windows).

:func:`atomic_open` (one file)
    - ``"-"``, ``/dev/stdout`` and ``/dev/stderr`` write to the process's stream.
    - A regular file or a new path is replaced atomically (an existing file keeps its permission bits).
    - A symlink is written *through*: its final target is replaced and the link stays a link.
    - Anything else that exists (a named pipe, a character device, any path under ``/dev``) is written directly,
      without a temporary file; a failure may then leave partial output there, as with any stream.
    - A path that is a directory, or whose directory cannot be created or written: :class:`UserError`.
    - Missing parent directories are created (like ``mkdir -p``); when the write fails, those we created are
      removed again.

:func:`atomic_dir` (a set of files, e.g. a model directory or a report)
    The caller writes into a staging directory; when the block succeeds:

    - if ``path`` does not exist, the staging directory is renamed to it: the directory appears whole;
    - if ``path`` is an existing directory, each staged file replaces the file of the same name (atomically,
      written through symlinks as above) and **every other file in** ``path`` **is left untouched**: exporting a
      model into a run directory never deletes its checkpoints. All conflicts (a staged file where a directory
      exists, a staged directory where a file exists, an unwritable directory) are checked before anything is
      moved, and raise :class:`UserError`;
    - if ``path`` exists and is not a directory: :class:`UserError`.

    When the block raises, nothing is moved and the staging directory is removed.

Temporaries are named ``.<name>.mz<pid>-<random>.tmp``. One left behind by a killed process is removed by the
next write into the same directory (once per directory per process) when its process no longer runs and it is
older than the current process; files of any other name are never removed. Writers into one directory are
assumed to share a PID namespace (one machine).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from maskzoo.core.errors import UserError

__all__ = ["atomic_dir", "atomic_open", "check_output_dir", "check_output_file", "clean_stale_temporaries",
           "remove_tree"]

_STARTED = time.time()  # "older than this process" for stale temporaries
_TEMP = re.compile(r"^\..+\.mz(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
_STREAMS = {"-": "stdout", "/dev/stdout": "stdout", "/dev/stderr": "stderr"}
_DEVICE_ROOTS = ("/dev/", "/proc/")
_cleaned: set[str] = set()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(name: str) -> str:
    return f".{name[:180]}.mz{os.getpid()}-"  # the name is cut so that the temporary's name stays legal


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists but not ours, or not a PID at all: leave it alone
    return True


def clean_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove temporaries of our naming in ``directory`` whose writer died before this process started.

    Returns what was removed. Errors are ignored (cleaning is a courtesy, never a reason to fail a write).
    """
    directory = Path(directory)
    key = os.path.realpath(directory)
    if key in _cleaned:
        return []
    _cleaned.add(key)
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or _pid_alive(int(m.group("pid"))):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= _STARTED:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _os_error(path: Path, e: OSError) -> UserError:
    return UserError(f"cannot write {path}: {e.strerror or e}")


def _make_dirs(directory: Path) -> list[Path]:
    """``mkdir -p directory``; returns the directories created (outermost first). UserError if impossible."""
    missing = []
    d = directory
    while not os.path.lexists(d):
        missing.append(d)
        d = d.parent
    if not os.path.isdir(d):
        raise UserError(f"cannot write into {directory}: {d} is not a directory")
    created = []
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except OSError as e:
            _remove_dirs(created)
            raise UserError(f"cannot create directory {d}: {e.strerror or e}") from None
        created.append(d)
    return created


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_file(src: Path, dest: Path) -> None:
    """Move staged file ``src`` onto ``dest`` atomically, keeping an existing file's permission bits."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(src, stat.S_IMODE(os.stat(dest).st_mode))
    try:
        os.replace(src, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        # ``dest`` was reached through a symlink onto another file system: copy beside it, then rename
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(dest.name), suffix=".tmp", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
                out.flush()
                os.fsync(out.fileno())
            shutil.copymode(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


# ------------------------------------------------------------------------------------------- one file


@contextlib.contextmanager
def _stream(name: str, binary: bool) -> Iterator[IO]:
    stream = getattr(sys, name)
    out = stream.buffer if binary else stream
    yield out
    out.flush()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing (``mode`` ``"w"`` or ``"wb"``); a regular file appears only when the block
    finishes without an exception. See the module docstring for symlinks, devices, pipes and ``"-"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', not {mode!r}")
    binary = mode == "wb"
    encoding = None if binary else encoding
    text = os.fspath(path)
    if text in _STREAMS:
        with _stream(_STREAMS[text], binary) as f:
            yield f
        return
    if text.endswith(os.sep) and text.strip(os.sep):
        raise UserError(f"{text}: is a directory name; expected a file path")
    path = Path(text)
    if os.path.abspath(text).startswith(_DEVICE_ROOTS):
        if os.path.isdir(text):
            raise UserError(f"{text}: is a directory; expected a file path")
        with _direct(path, mode, encoding) as f:
            yield f
        return
    dest = Path(os.path.realpath(path))  # written through symlinks
    try:
        st = os.stat(dest)
    except (FileNotFoundError, NotADirectoryError):  # a new file; _make_dirs explains a bad parent
        st = None
    except OSError as e:
        raise _os_error(path, e) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a directory; expected a file path")
    if st is not None and not stat.S_ISREG(st.st_mode):  # pipe, device, socket: no temporary file
        with _direct(path, mode, encoding) as f:
            yield f
        return
    created = _make_dirs(dest.parent)
    clean_stale_temporaries(dest.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(dest.name), suffix=".tmp", dir=dest.parent)
    except OSError as e:
        _remove_dirs(created)
        raise _os_error(path, e) from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; an existing file's bits win below
        try:
            _replace_file(Path(tmp), dest)
        except OSError as e:
            raise _os_error(path, e) from None
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _remove_dirs(created)
        raise


@contextlib.contextmanager
def _direct(path: Path, mode: str, encoding: str | None) -> Iterator[IO]:
    try:
        f = open(path, mode, encoding=encoding)  # noqa: SIM115 - closed below
    except OSError as e:
        raise _os_error(path, e) from None
    with f:
        yield f


# ------------------------------------------------------------------------------------------- file sets


def _settle_tree(root: Path) -> None:
    """fsync every staged file and give it the mode ``open()`` would (``0o666 & ~umask``, ``0o777`` for an
    executable): some writers create 0600 files (safetensors' ``save_file`` does), and a model written for a
    group must not come out readable by its owner only."""
    umask = _umask()
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                executable = os.stat(p).st_mode & stat.S_IXUSR
                os.chmod(p, (0o777 if executable else 0o666) & ~umask)
                with open(p, "rb") as f:
                    os.fsync(f.fileno())


def _plan_merge(stage: Path, target: Path, shown: Path, plan: list[tuple[Path, Path]]) -> None:
    """Pair every staged entry with its destination under ``target`` (``shown``: the name for messages).
    A staged directory new at the destination moves whole; an existing one is merged into."""
    for entry in sorted(os.scandir(stage), key=lambda e: e.name):
        src, dest, label = Path(entry.path), target / entry.name, shown / entry.name
        exists = os.path.lexists(dest)
        real = Path(os.path.realpath(dest)) if exists else dest
        if entry.is_dir(follow_symlinks=False):
            if not exists:
                plan.append((src, dest))
            elif real.is_dir():
                _plan_merge(src, real, label, plan)
            else:
                raise UserError(f"{label}: exists and is not a directory; not replacing it")
        elif exists and os.path.exists(real) and not real.is_file():
            kind = "a directory" if real.is_dir() else "not a regular file"
            raise UserError(f"{label}: exists and is {kind}; not replacing it")
        else:
            plan.append((src, real))


def _merge(stage: Path, target: Path, shown: Path) -> None:
    plan: list[tuple[Path, Path]] = []
    _plan_merge(stage, target, shown, plan)
    for d in sorted({dest.parent for _, dest in plan}):
        if not os.access(d, os.W_OK | os.X_OK):
            raise UserError(f"cannot write into {d}: permission denied")
    for src, dest in plan:
        try:
            _replace_file(src, dest) if src.is_file() and not src.is_symlink() else os.replace(src, dest)
        except OSError as e:
            raise _os_error(dest, e) from None
    for d in sorted({dest.parent for _, dest in plan}):
        _fsync_dir(d)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging directory whose files land in directory ``path`` when the block succeeds.

    A new ``path`` appears whole; into an existing one each staged file is moved atomically and files not
    staged stay untouched (module docstring).
    """
    shown = Path(path)
    target = Path(os.path.realpath(shown))
    if os.path.exists(target) and not target.is_dir():
        raise UserError(f"{shown}: exists and is not a directory; expected a directory for the output files")
    created = _make_dirs(target.parent)
    fresh = not target.exists()
    home = target.parent if fresh else target  # the staging dir lives on the destination's file system
    clean_stale_temporaries(target.parent)
    if not fresh:
        clean_stale_temporaries(target)
    try:
        stage = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=home))
    except OSError as e:
        _remove_dirs(created)
        raise _os_error(shown, e) from None
    try:
        yield stage
        _settle_tree(stage)
        stage.chmod(0o777 & ~_umask())  # mkdtemp creates 0700
        moved = False
        if fresh:
            try:
                os.replace(stage, target)
                moved = True
            except OSError as e:  # the directory appeared meanwhile: merge into it
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise _os_error(shown, e) from None
        if not moved:
            if not target.is_dir():
                raise UserError(f"{shown}: exists and is not a directory; expected a directory for the output files")
            _merge(stage, target, shown)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_dirs(created)
        raise
    shutil.rmtree(stage, ignore_errors=True)  # what is left of it after a merge


def remove_tree(path: str | os.PathLike) -> None:
    """Delete directory ``path``: first renamed to a temporary of our naming (so it leaves listings at once and
    a kill mid-way leaves only a temporary that the next write cleans up), then removed."""
    path = Path(path)
    doomed = path.with_name(f"{_temp_prefix(path.name)}{os.urandom(4).hex()}.tmp")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


# ------------------------------------------------------------------------------------------- early checks


def _check_creatable(path: Path, what: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable directory."""
    d = path.parent
    while not os.path.lexists(d):
        d = d.parent
    real = os.path.realpath(d)
    if not os.path.isdir(real):
        raise UserError(f"{what} {path}: {d} is not a directory")
    if not os.access(real, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: cannot create it in {d} (permission denied)")


def check_output_dir(path: str | os.PathLike, what: str = "output directory") -> None:
    """Fail now, before any long work, if :func:`atomic_dir` could not write directory ``path`` later: it exists
    and is not a directory, it is not writable, or it cannot be created. Creates nothing."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    if os.path.exists(real):
        if not real.is_dir():
            raise UserError(f"{what} {path}: exists and is not a directory")
        if not os.access(real, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path}: not writable (permission denied)")
        return
    _check_creatable(real, what)


def check_output_file(path: str | os.PathLike, what: str = "output file") -> None:
    """Fail now if :func:`atomic_open` could not write file ``path`` later (a directory, an unwritable or
    uncreatable directory). Streams (``-``, ``/dev/...``) always pass. Creates nothing."""
    text = os.fspath(path)
    if text in _STREAMS or os.path.abspath(text).startswith(_DEVICE_ROOTS):
        return
    real = Path(os.path.realpath(text))
    if real.is_dir() or (text.endswith(os.sep) and text.strip(os.sep)):
        raise UserError(f"{what} {text}: is a directory; expected a file path")
    if os.path.exists(real):
        if real.is_file() and not os.access(real.parent, os.W_OK | os.X_OK):
            raise UserError(f"{what} {text}: cannot replace it in {real.parent} (permission denied)")
        return
    _check_creatable(real, what)
