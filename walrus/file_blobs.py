"""The `file` blob driver (walrus/blobs.py): object bodies on disk. A blob is named by a random
id, never by its key, so no key (`../`, absolute paths, anything) can name a file outside the
data directory.

A new blob is written to a temporary file, fsynced, renamed into place and its folder fsynced:
a crash leaves at worst an unreferenced temporary file, never a half-written body that a row
points at."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from walrus.blobs import BLOB_ID, READ_CHUNK, Segments, plan


class FileBlobWriter:
    """A temporary file that becomes a blob on `commit()` or vanishes on `abort()`. The file is
    opened by the first write (or the commit of an empty body), in whichever worker thread
    does it: creating the writer touches no disk, so the event loop may."""

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store
        self.blob_id = uuid.uuid4().hex
        self._tmp = store.root / "tmp" / f"{self.blob_id}.part"
        self._file: BinaryIO | None = None
        self._done = False
        self.size = 0

    def _open(self) -> BinaryIO:
        if self._file is None:
            if self._done:
                raise ValueError("blob writer already finished")
            self._file = open(self._tmp, "wb", buffering=0)
        return self._file

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._open().write(data)
        self.size += len(data)

    def commit(self) -> str:
        handle = self._open()
        os.fsync(handle.fileno())
        handle.close()
        self._done = True
        final = self._store.path(self.blob_id)
        os.replace(self._tmp, final)
        # The rename is durable only once its directory is: a row must never outlive its body.
        _fsync_dir(final.parent)
        return self.blob_id

    def abort(self) -> None:
        self._done = True
        if self._file is None:
            return
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        # Every folder a blob id can name (its first two hex digits), made once and made
        # durable here, so that committing a blob never creates one.
        for index in range(256):
            (root / f"{index:02x}").mkdir(exist_ok=True)
        _fsync_dir(root)
        # Temporary files left by a crash belong to no object.
        for leftover in (root / "tmp").iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, blob_id: str) -> Path:
        if not BLOB_ID.match(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def writer(self, size: int | None = None) -> FileBlobWriter:
        return FileBlobWriter(self)

    def delete(self, blob_ids: Sequence[str]) -> None:
        for blob_id in blob_ids:
            self.path(blob_id).unlink(missing_ok=True)

    def read_small(self, segments: Segments, start: int, end: int) -> bytes:
        return b"".join(self.iter_range(segments, start, end))

    def iter_range(self, segments: Segments, start: int, end: int,
                   chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """See BlobStore.iter_range: an open handle still reads an unlinked blob (a multipart
        object's later parts are opened as they come)."""
        pieces = [(blob_id, lo, hi) for blob_id, lo, hi, _ in plan(segments, start, end)]
        first = open(self.path(pieces[0][0]), "rb") if pieces else None
        return self._stream(pieces, first, chunk)

    def stored_ids(self) -> Iterator[str]:
        for folder in self.root.iterdir():
            if folder.name != "tmp" and folder.is_dir():
                yield from (f.name for f in folder.iterdir())

    def _stream(self, pieces: list[tuple[str, int, int]], first: BinaryIO | None,
                chunk: int) -> Iterator[bytes]:
        for index, (blob_id, lo, hi) in enumerate(pieces):
            handle = first if index == 0 and first is not None else open(self.path(blob_id), "rb")
            with handle:
                handle.seek(lo)
                remaining = hi - lo + 1
                while remaining > 0:
                    data = handle.read(min(chunk, remaining))
                    if not data:
                        raise OSError(f"blob {blob_id} is shorter than its record")
                    remaining -= len(data)
                    yield data
