"""A volume's bytes as the tests read and write them, on either SC backend, named by the
locator the SC reports as the volume's `path`: a sparse file, or `rbd:<pool>/<image>`.

The RBD side goes through the `rbd` command as an operator would, not through the SC's code:
writes are an `rbd import-diff` stream, reads materialise the image's allocated extents (its
`rbd export-diff`) into a sparse local file, which the file-side helpers then compare."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from tests.support.ceph import CephCluster

RBD = "rbd:"


class VolumeData(Protocol):
    backend: str

    def write(self, locator: str, offset: int, data: bytes) -> None: ...

    def read(self, locator: str, offset: int, length: int) -> bytes: ...

    def size(self, locator: str) -> int: ...

    def exists(self, locator: str) -> bool: ...

    def allocated(self, locator: str) -> int:
        """Bytes that hold data (not holes)."""
        ...

    def local_copy(self, locator: str) -> Iterator[Path]:
        """A sparse local file with the volume's bytes (the file itself for the file backend)."""
        ...


class FileData:
    backend = "file"

    def write(self, locator: str, offset: int, data: bytes) -> None:
        with open(locator, "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def read(self, locator: str, offset: int, length: int) -> bytes:
        with open(locator, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def size(self, locator: str) -> int:
        return os.stat(locator).st_size

    def exists(self, locator: str) -> bool:
        return Path(locator).exists()

    def allocated(self, locator: str) -> int:
        return os.stat(locator).st_blocks * 512

    @contextmanager
    def local_copy(self, locator: str) -> Iterator[Path]:
        yield Path(locator)


class RbdData:
    backend = "rbd"

    def __init__(self, conf: Path) -> None:
        self.conf = conf

    @staticmethod
    def spec(locator: str) -> str:
        assert locator.startswith(RBD), locator
        return locator[len(RBD):]

    def _rbd(self, *argv: str, data: bytes | None = None) -> bytes:
        done = subprocess.run(["rbd", "--conf", str(self.conf), *argv],
                              input=data, capture_output=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"rbd {' '.join(argv)}: {done.stderr.decode(errors='replace')[-1500:]}")
        return done.stdout

    def write(self, locator: str, offset: int, data: bytes) -> None:
        stream = b"rbd diff v1\n" + b"w" + struct.pack("<QQ", offset, len(data)) + data + b"e"
        self._rbd("import-diff", "-", self.spec(locator), data=stream)

    def extents(self, locator: str) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) of every allocated extent, parsed from `rbd export-diff`."""
        raw = memoryview(self._rbd("export-diff", self.spec(locator), "-"))
        assert bytes(raw[:12]) == b"rbd diff v1\n"
        at = 12
        while True:
            tag = bytes(raw[at:at + 1])
            at += 1
            if tag in (b"f", b"t"):
                (length,) = struct.unpack_from("<I", raw, at)
                at += 4 + length
            elif tag == b"s":
                at += 8
            elif tag == b"z":
                at += 16
            elif tag == b"w":
                offset, length = struct.unpack_from("<QQ", raw, at)
                at += 16
                yield offset, bytes(raw[at:at + length])
                at += length
            elif tag == b"e":
                return
            else:
                raise AssertionError(f"unknown export-diff record {tag!r}")

    def read(self, locator: str, offset: int, length: int) -> bytes:
        out = bytearray(length)
        for start, data in self.extents(locator):
            lo, hi = max(start, offset), min(start + len(data), offset + length)
            if lo < hi:
                out[lo - offset:hi - offset] = data[lo - start:hi - start]
        return bytes(out)

    def size(self, locator: str) -> int:
        return int(json.loads(self._rbd("info", "--format", "json", self.spec(locator)))["size"])

    def snapshots(self, locator: str) -> list[str]:
        return [s["name"] for s in json.loads(self._rbd("snap", "ls", "--format", "json", self.spec(locator)))]

    def exists(self, locator: str) -> bool:
        try:
            self._rbd("info", self.spec(locator))
            return True
        except RuntimeError as exc:
            if "No such file or directory" in str(exc):
                return False
            raise

    def allocated(self, locator: str) -> int:
        # The extents that hold anything but zeros (memstore reports an object's whole run).
        return sum(len(data) for _, data in self.extents(locator) if data.count(0) != len(data))

    @contextmanager
    def local_copy(self, locator: str) -> Iterator[Path]:
        handle, name = tempfile.mkstemp(prefix="eucasim-rbd-copy-", suffix=".raw")
        try:
            os.ftruncate(handle, self.size(locator))
            for offset, data in self.extents(locator):
                os.pwrite(handle, data, offset)
            os.close(handle)
            handle = -1
            yield Path(name)
        finally:
            if handle >= 0:
                os.close(handle)
            os.unlink(name)


def volume_data(backend: str, ceph: CephCluster | None = None) -> VolumeData:
    if backend == "rbd":
        assert ceph is not None
        return RbdData(ceph.conf)
    return FileData()


def data_of(config: object) -> VolumeData:
    """The helper for a cloud's SC, from its configuration (SC_BACKEND, SC_CEPH_CONF)."""
    if getattr(config, "SC_BACKEND", "file") == "rbd":
        return RbdData(Path(getattr(config, "SC_CEPH_CONF")))
    return FileData()


def rbd_settings(ceph: CephCluster, user: str = "admin") -> dict[str, str]:
    """The SC's (and a node's) settings for volumes in the test cluster's pool."""
    return {"SC_BACKEND": "rbd", "SC_CEPH_CONF": str(ceph.conf), "SC_CEPH_POOL": ceph.pool,
            "SC_CEPH_USER": user}
