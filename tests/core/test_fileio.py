"""Atomic output: files and directories appear whole or not at all."""

from __future__ import annotations

import pytest

from maskzoo.core.fileio import atomic_dir, atomic_open


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


def test_atomic_dir_swaps_directories_whole(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    with pytest.raises(ValueError), atomic_dir(target) as d:
        (d / "b.txt").write_text("2")
        raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as d:
        (d / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
