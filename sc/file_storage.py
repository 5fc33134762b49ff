"""The `file` backend of sc/storage.py: sparse files under SC_VOLUME_PATH (sc/files.py does the
file work), frozen copies under its `staging` folder until their upload ends."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sc import files
from sc.storage import DataReader, DataWriter, Frozen, StorageFull
from services.faults import PROCESS


class FileReader:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.data_bytes = sum(end - start for start, end in files.data_extents(fd, self.size))

    def pieces(self, piece: int) -> Iterator[tuple[int, int]]:
        for start, end in files.data_extents(self.fd, self.size):
            for offset in range(start, end, piece):
                yield offset, min(piece, end - offset)

    def read_into(self, offset: int, view: memoryview) -> None:
        got = os.preadv(self.fd, [view], offset)
        if got != len(view):
            raise OSError(f"short read at {offset}: {got} of {len(view)} bytes")


class FileWriter:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, offset: int, data: bytes | memoryview) -> None:
        os.pwrite(self.fd, data, offset)


class FileStorage:
    backend = "file"
    holds_snapshots = False

    def __init__(self, folder: Path, staging: Path) -> None:
        self.folder = folder
        self.staging = staging
        folder.mkdir(parents=True, exist_ok=True)

    def locator(self, volume_id: str) -> str:
        return str(self.folder / f"{volume_id}.img")

    def create(self, locator: str, size_bytes: int) -> None:
        path = Path(locator)
        try:
            PROCESS.check_write(locator)
            files.create_sparse(path, size_bytes)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            path.unlink(missing_ok=True)
            raise StorageFull(exc.strerror) from None

    def grow(self, locator: str, size_bytes: int) -> None:
        files.grow(Path(locator), size_bytes)

    def delete(self, locator: str) -> None:
        Path(locator).unlink(missing_ok=True)

    def exists(self, locator: str) -> bool:
        return Path(locator).is_file()

    def allocated(self, locators: list[str]) -> dict[str, int]:
        return {locator: files.allocated_bytes(Path(locator)) for locator in locators}

    def room_gib(self) -> int:
        return files.disk_room_gib(self.folder, sum(files.allocated_bytes(p)
                                                    for p in self.folder.glob("*.img")))

    def freeze(self, locator: str, snapshot_id: str) -> Frozen:
        frozen = self.staging / f"{snapshot_id}.frozen"
        return Frozen(str(frozen), files.freeze(Path(locator), frozen))

    def frozen_exists(self, handle: str) -> bool:
        return Path(handle).is_file()

    @contextmanager
    def open_frozen(self, handle: str) -> Iterator[DataReader]:
        fd = os.open(handle, os.O_RDONLY)
        try:
            yield FileReader(fd)
        finally:
            os.close(fd)

    def uploaded(self, handle: str) -> None:
        Path(handle).unlink(missing_ok=True)

    def forget(self, handle: str) -> None:
        Path(handle).unlink(missing_ok=True)

    def sweep(self, keep: set[str]) -> None:
        if self.staging.is_dir():
            for stale in self.staging.glob("*.frozen"):
                if str(stale) not in keep:
                    stale.unlink(missing_ok=True)

    def clone(self, handle: str, locator: str, size_bytes: int) -> bool:
        return False  # a frozen copy lives only until its upload ends: restore from Walrus

    @contextmanager
    def open_writer(self, locator: str) -> Iterator[DataWriter]:
        fd = os.open(locator, os.O_WRONLY)
        try:
            yield FileWriter(fd)
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self, locator: str) -> None:
        files.discard(Path(locator))

    def describe(self) -> str:
        return f"sparse files under {self.folder}"

