"""The SC's file primitives on this machine's real file system: sparse creation, extent
walking, and the point-in-time clone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sc import files

MIB = 1024 * 1024
GIB = 1024 * MIB


def test_a_sparse_volume_takes_no_room_and_grows_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "v.img"
    files.create_sparse(path, 10 * GIB)
    assert (os.stat(path).st_size, files.allocated_bytes(path)) == (10 * GIB, 0)
    with pytest.raises(FileExistsError):
        files.create_sparse(path, GIB)
    files.grow(path, 12 * GIB)
    assert (os.stat(path).st_size, files.allocated_bytes(path)) == (12 * GIB, 0)
    with pytest.raises(ValueError):
        files.grow(path, GIB)


def test_data_extents_find_the_written_runs_among_holes(tmp_path: Path) -> None:
    path = tmp_path / "v.img"
    files.create_sparse(path, GIB)
    with open(path, "r+b") as f:
        for offset in (0, 300 * MIB, GIB - MIB):
            f.seek(offset)
            f.write(b"\xab" * MIB)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert list(files.data_extents(fd, GIB)) == [(0, MIB), (300 * MIB, 301 * MIB), (GIB - MIB, GIB)]
    finally:
        os.close(fd)


def test_freeze_keeps_the_volume_as_it_was_and_stays_sparse(tmp_path: Path) -> None:
    source = tmp_path / "v.img"
    files.create_sparse(source, 10 * GIB)
    with open(source, "r+b") as f:
        f.seek(5 * GIB)
        f.write(b"before" * 1000)
    frozen = tmp_path / "v.frozen"
    method = files.freeze(source, frozen)
    assert method in ("reflink", "extent-copy")
    with open(source, "r+b") as f:  # the guest writes on
        f.seek(5 * GIB)
        f.write(b"after!" * 1000)
    with open(frozen, "rb") as f:
        f.seek(5 * GIB)
        assert f.read(6000) == b"before" * 1000
    assert os.stat(frozen).st_size == 10 * GIB
    assert files.allocated_bytes(frozen) <= MIB
    # A clone that cannot be made leaves no file behind.
    with pytest.raises(FileNotFoundError):
        files.freeze(tmp_path / "missing.img", tmp_path / "missing.frozen")
    assert not (tmp_path / "missing.frozen").exists()


def test_the_tests_byte_comparison_sees_one_changed_byte_among_holes(tmp_path: Path) -> None:
    from tests.sc.conftest import same_bytes

    a, b = tmp_path / "a.img", tmp_path / "b.img"
    for path in (a, b):
        files.create_sparse(path, GIB)
    assert same_bytes(a, b)
    with open(b, "r+b") as f:  # data in one file where the other has a hole
        f.seek(700 * MIB + 5)
        f.write(b"\x01")
    assert not same_bytes(a, b)
    with open(a, "r+b") as f:
        f.seek(700 * MIB + 5)
        f.write(b"\x01")
    assert same_bytes(a, b)
    with open(a, "r+b") as f:  # written zeros equal a hole
        f.seek(100 * MIB)
        f.write(bytes(MIB))
    assert same_bytes(a, b)
    files.grow(b, 2 * GIB)
    assert not same_bytes(a, b) and same_bytes(a, b, GIB)
