"""Safe output: files appear whole or not at all, and nothing we did not write is ever removed or replaced."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _tree_snapshot import snapshot as _snapshot  # tests/core is on sys.path (tests/conftest.py)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskzoo.core import fileio
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_dir, atomic_open, clean_stale_temporaries

# ------------------------------------------------------------------------------------------ atomic_open


def test_atomic_open_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.fasta"
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write(">half\nMKT")
        raise RuntimeError("killed mid-write")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_open_replaces_an_existing_file_only_when_done(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("new")
        raise RuntimeError
    assert target.read_text() == "old"
    with atomic_open(target) as f:
        f.write("new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) != 0o600


def test_atomic_open_keeps_the_permission_bits_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_open(target) as f:
        f.write("new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "data" / "real.txt"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_open(link) as f:
        f.write("new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.txt"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "later.txt")
    with atomic_open(link) as f:
        f.write("x")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "x"


def test_a_named_pipe_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    with atomic_open(fifo) as f:
        f.write("through the pipe\n")
    reader.join(timeout=10)
    assert got == ["through the pipe\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary beside it


def test_dash_and_dev_stdout_write_to_the_process_stdout(capsys):
    for name in ("-", "/dev/stdout"):
        with atomic_open(name) as f:
            f.write(f"text via {name}\n")
    with atomic_open("-", "wb") as f:
        f.write(b"bytes\n")
    assert capsys.readouterr().out == "text via -\ntext via /dev/stdout\nbytes\n"


def test_dev_stdout_works_in_a_real_process_with_a_redirected_stdout(tmp_path):
    code = "from maskzoo.core.fileio import atomic_open\nwith atomic_open('/dev/stdout') as f: f.write('hi\\n')\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "hi\n", out.stderr


def test_dev_null_is_written_directly(tmp_path):
    with atomic_open("/dev/null") as f:
        f.write("discarded")
    assert os.path.exists("/dev/null") and not Path("/dev/null").is_file()


def test_a_directory_as_output_file_is_a_user_error(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("keep")
    before = _snapshot(tmp_path)
    for bad in (tmp_path / "d", f"{tmp_path / 'new'}{os.sep}"):
        with pytest.raises(UserError, match="directory"), atomic_open(bad) as f:
            f.write("x")
    assert _snapshot(tmp_path) == before


def test_missing_parents_are_created_and_removed_again_when_the_write_fails(tmp_path):
    with atomic_open(tmp_path / "a" / "b" / "out.txt") as f:
        f.write("x")
    assert (tmp_path / "a" / "b" / "out.txt").read_text() == "x"
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "c" / "d" / "out.txt") as f:
        raise RuntimeError
    assert not (tmp_path / "c").exists()


def test_a_file_in_the_parent_path_is_a_user_error(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(UserError, match="not a directory"), atomic_open(tmp_path / "f" / "out.txt") as f:
        f.write("x")
    assert (tmp_path / "f").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_an_unwritable_directory_is_a_user_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write"), atomic_open(ro / "out.txt") as f:
            f.write("x")
        with pytest.raises(UserError, match="cannot"), atomic_dir(ro / "model") as d:
            (d / "a").write_text("x")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_a_very_long_file_name_keeps_a_legal_temporary_name(tmp_path):
    name = "x" * 250
    with atomic_open(tmp_path / name) as f:
        f.write("ok")
    assert (tmp_path / name).read_text() == "ok"


# ------------------------------------------------------------------------------------------ atomic_dir


def test_a_new_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(ValueError), atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
        (d / "sub").mkdir()
        (d / "sub" / "b.txt").write_text("2")
    assert _snapshot(target) == _snapshot(target) and (target / "sub" / "b.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_staged_files_get_the_umask_mode_even_from_writers_that_create_0600(tmp_path):
    import torch
    from safetensors.torch import save_file  # writes its file 0600

    old = os.umask(0o027)
    try:
        with atomic_dir(tmp_path / "model") as d:
            save_file({"w": torch.zeros(2)}, str(d / "model.safetensors"))
            (d / "config.json").write_text("{}")
            fd = os.open(d / "run.sh", os.O_CREAT | os.O_WRONLY, 0o700)
            os.close(fd)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "model").iterdir()}
    assert modes == {"model.safetensors": 0o640, "config.json": 0o640, "run.sh": 0o750}


def test_writing_into_an_existing_directory_replaces_only_the_files_written(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    (target / "notes.md").write_text("mine")
    with pytest.raises(ValueError), atomic_dir(target) as d:
        (d / "a.txt").write_text("half")
        raise ValueError
    assert (target / "a.txt").read_text() == "1"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("2")
        (d / "b.txt").write_text("3")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "2", "b.txt": "3", "notes.md": "mine"}


def test_an_export_into_a_run_directory_keeps_its_checkpoints(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_0000010").mkdir(parents=True)
    (run / "checkpoints" / "step_0000010" / "model.safetensors").write_bytes(b"weights")
    (run / "checkpoints" / "latest").write_text("step_0000010\n")
    (run / "metrics.jsonl").write_text('{"step": 10}\n')
    before = _snapshot(run)
    with atomic_dir(run) as d:  # export_dir == run_dir
        (d / "model.safetensors").write_bytes(b"exported")
        (d / "config.json").write_text("{}")
    after = _snapshot(run)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {"model.safetensors", "config.json"}


def test_a_regular_file_where_a_directory_is_expected_is_a_user_error(tmp_path):
    (tmp_path / "report").write_text("an important file")
    with pytest.raises(UserError, match="not a directory"), atomic_dir(tmp_path / "report") as d:
        (d / "x").write_text("x")
    assert (tmp_path / "report").read_text() == "an important file"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_conflicts_are_found_before_anything_is_moved(tmp_path):
    target = tmp_path / "out"
    (target / "plots").mkdir(parents=True)  # a directory where we will write a file
    (target / "a.txt").write_text("old a")
    before = _snapshot(tmp_path)
    with pytest.raises(UserError, match="plots"), atomic_dir(target) as d:
        (d / "a.txt").write_text("new a")  # sorted before "plots": would be moved first without a plan
        (d / "plots").write_text("file")
    assert _snapshot(tmp_path) == before


def test_a_symlinked_file_inside_the_directory_is_written_through(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    blob = tmp_path / "blob"
    blob.write_text("old")
    (target / "config.json").symlink_to(blob)
    with atomic_dir(target) as d:
        (d / "config.json").write_text("new")
    assert (target / "config.json").is_symlink() and blob.read_text() == "new"


def test_a_symlinked_directory_is_merged_into_and_stays_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("k")
    (tmp_path / "link").symlink_to(real)
    with atomic_dir(tmp_path / "link") as d:
        (d / "new").write_text("n")
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in real.iterdir()) == ["keep", "new"]


# ------------------------------------------------------------------------------------------ stale temporaries


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    dead = _dead_pid()
    old = time.time() - 3600
    ours_file = tmp_path / f".out.txt.mz{dead}-abc123.tmp"
    ours_dir = tmp_path / f".model.mz{dead}-xyz_9.tmp"
    live_file = tmp_path / f".out.txt.mz{os.getppid()}-abc123.tmp"  # writer still running
    fresh = tmp_path / f".x.mz{dead}-new.tmp"  # younger than this process: maybe another namespace's
    user_files = [tmp_path / ".out.txt.old", tmp_path / ".out.txt.abcdefgh.tmp", tmp_path / "mz1-a.tmp"]
    ours_file.write_text("x" * 100)
    ours_dir.mkdir()
    (ours_dir / "model.safetensors").write_bytes(b"0" * 1000)
    for p in [live_file, *user_files]:
        p.write_text("keep")
    fresh.write_text("keep")
    for p in [ours_file, ours_dir, live_file, *user_files]:
        os.utime(p, (old, old))
    with atomic_open(tmp_path / "out.txt") as f:
        f.write("new")
    assert not ours_file.exists() and not ours_dir.exists()
    assert all(p.exists() for p in [live_file, fresh, *user_files])
    assert clean_stale_temporaries(tmp_path) == []  # once per directory per process


def test_a_killed_writer_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    code = (
        "import os, signal\nfrom maskzoo.core.fileio import atomic_dir\n"
        f"with atomic_dir({str(tmp_path / 'model')!r}) as d:\n"
        "    (d / 'w.bin').write_bytes(b'0' * 4096)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], timeout=120)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".model.mz") and left[0].endswith(".tmp")
    old = min(time.time(), fileio._STARTED) - 60  # the killed process ran before this one (the next run),
    os.utime(tmp_path / left[0], (old, old))  # also when the suite's own process started long ago
    with atomic_dir(tmp_path / "model") as d:
        (d / "w.bin").write_bytes(b"1")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# ------------------------------------------------------------------------------------------ properties

_names = st.one_of(
    st.sampled_from(["sub", "sub_dir", "config.json"]),  # collide with the generated layouts
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12).filter(
        lambda s: s not in (".", "..")
    ),
)
_files = st.dictionaries(_names, st.binary(max_size=64), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=_files, existing_sub=_files, written=_files, fresh_target=st.booleans())
def test_property_only_written_files_change(tmp_path_factory, existing, existing_sub, written, fresh_target):
    """Over generated layouts: every pre-existing file we did not write is byte-identical afterwards, every
    written file has the written bytes, and nothing else appears (no temporaries)."""
    root = tmp_path_factory.mktemp("p")
    target = root / "out"
    if not fresh_target:
        target.mkdir()
        for name, data in existing.items():
            (target / name).write_bytes(data)
        if existing_sub:
            sub = target / next(n for n in ("sub", "sub_dir", "z_sub") if n not in existing)
            sub.mkdir()
            for name, data in existing_sub.items():
                (sub / name).write_bytes(data)
    (root / "sibling").write_bytes(b"s")
    before = _snapshot(root)
    conflict = any(name in before and before[name] == "dir" for name in (f"out/{n}" for n in written))
    try:
        with atomic_dir(target) as d:
            for name, data in written.items():
                (d / name).write_bytes(data)
    except UserError:
        assert conflict
        assert _snapshot(root) == before
        return
    assert not conflict
    after = _snapshot(root)
    for rel, digest in before.items():
        if rel.startswith("out/") and rel[4:] in written:
            continue
        assert after[rel] == digest, rel
    for name, data in written.items():
        assert (target / name).read_bytes() == data
    assert set(after) == set(before) | {f"out/{n}" for n in written} | {"out"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_names, data=st.binary(max_size=256), existing=_files, fail=st.booleans())
def test_property_atomic_open_changes_only_its_file(tmp_path_factory, name, data, existing, fail):
    root = tmp_path_factory.mktemp("q")
    for n, d in existing.items():
        (root / n).write_bytes(d)
    before = _snapshot(root)
    try:
        with atomic_open(root / name, "wb") as f:
            f.write(data)
            if fail:
                raise RuntimeError
    except RuntimeError:
        assert _snapshot(root) == before
        return
    after = _snapshot(root)
    assert (root / name).read_bytes() == data
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}


def test_remove_tree_leaves_no_trace(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_text("x")
    fileio.remove_tree(tmp_path / "d")
    assert list(tmp_path.iterdir()) == []
