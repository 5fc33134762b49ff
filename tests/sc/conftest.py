"""One Walrus for the SC tests and one SC per module (a real process each); volume and
snapshot ids are fresh per test, so tests share a zone without seeing each other's volumes."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sc.process import ScProcess, Walrus, sc_process, walrus_for_sc
from tests.support.volume_data import VolumeData, rbd_settings, volume_data


@pytest.fixture(scope="session")
def walrus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walrus]:
    with walrus_for_sc(tmp_path_factory.mktemp("sc-walrus")) as running:
        yield running


def backend_settings(request: pytest.FixtureRequest, backend: str) -> tuple[VolumeData, dict[str, str]]:
    """The test data helper and the SC's settings for a backend; the worker's Ceph cluster is
    started only when a test asks for `rbd`."""
    if backend == "rbd":
        ceph = request.getfixturevalue("ceph")
        return volume_data("rbd", ceph), rbd_settings(ceph)
    return volume_data("file"), {}


@pytest.fixture(scope="module", params=["file", "rbd"])
def sc(request: pytest.FixtureRequest, walrus: Walrus,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    """One SC per module and backend: the module's tests run once on sparse files and once on
    RBD images in the worker's Ceph cluster."""
    data, settings = backend_settings(request, request.param)
    with sc_process(tmp_path_factory.mktemp(f"sc-zone-1-{request.param}"), walrus, data,
                    SC_MAX_STORAGE="64", SC_SNAPSHOT_PART_MIB="1", **settings) as running:
        yield running


def host_address() -> str:
    """An address of this host other than loopback (what a node on another host would
    reach), or loopback on a machine that has none."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


@pytest.fixture(scope="module")
def nbd_sc(walrus: Walrus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    with sc_process(tmp_path_factory.mktemp("sc-nbd"), walrus, SC_EXPORT="nbd",
                    SC_NBD_ADDRESS=host_address(), SC_NBD_PORTS="10850-10869",
                    SC_MAX_STORAGE="16") as running:
        yield running


def volume_file(sc: ScProcess, volume_id: str) -> Path:
    return sc.volumes / f"{volume_id}.img"


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    found, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        found.append((start, end))
        offset = end
    return found


def same_bytes(a: Path, b: Path, length: int | None = None) -> bool:
    """Byte for byte over the first `length` bytes (all, when None; then the sizes must match
    too). Fast on gigabyte files that are mostly holes: where neither file has data, both
    read as zeros, so only the union of their data extents is read and compared."""
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
    try:
        size_a, size_b = os.fstat(fa).st_size, os.fstat(fb).st_size
        if length is None:
            if size_a != size_b:
                return False
            length = size_a
        elif min(size_a, size_b) < length:
            return False
        ranges = sorted(_extents(fa, length) + _extents(fb, length))
        for start, end in ranges:
            for offset in range(start, end, 16 * 1024 * 1024):
                count = min(16 * 1024 * 1024, end - offset)
                if os.pread(fa, count, offset) != os.pread(fb, count, offset):
                    return False
        return True
    finally:
        os.close(fa)
        os.close(fb)
