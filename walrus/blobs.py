"""Where object bodies live: one small interface, two drivers.

A blob is an immutable body named by a random id (never by its key: no key can name anything
outside the store). A row names its body as segments, `[[blob id, size], ...]`: a whole object
is one segment, a completed multipart object its parts' blobs in order. Everything Walrus
knows about an object (its key, ETag, checksums, ACL, versions, tags) is in its database; a
driver keeps bytes only.

- `file` (walrus/file_blobs.py): files under $EUCASIM_HOME/walrus/objects, fsynced.
- `s3` (walrus/s3_blobs.py): objects in a bucket of an existing S3 cluster (Ceph RGW, MinIO,
  AWS S3), written and read with Walrus's own credentials for that cluster.

Every call here blocks (disk or network): Walrus makes them in worker threads only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from services.config import CloudConfig

READ_CHUNK = 1024 * 1024
BLOB_ID = re.compile(r"^[0-9a-f]{32}$")

# (blob id, size) pairs, in order: a whole object or a part.
Segments = Sequence[Sequence[object]]


class BlobWriter(Protocol):
    """A new blob, written in order by one thread at a time (not necessarily the same one).
    Nothing is visible until `commit()`; `abort()` leaves nothing behind. Creating a writer
    touches no disk and no network, so the event loop may."""

    blob_id: str
    size: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def commit(self) -> str: ...
    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self, size: int | None = None) -> BlobWriter:
        """A new blob; `size` is its length when the request declares it (a driver may use it
        to stream the bytes on as they come; a body of another length is never committed)."""

    def delete(self, blob_ids: Sequence[str]) -> None:
        """Remove these blobs; one already gone is no error."""

    def read_small(self, segments: Segments, start: int, end: int) -> bytes:
        """Bytes `start`..`end` inclusive, at once (small bodies only)."""

    def iter_range(self, segments: Segments, start: int, end: int,
                   chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Bytes `start`..`end` inclusive of the object made of `segments`, streamed. The first
        blob is opened by this call, before iteration starts: a response streams later, and
        an overwrite of the key in between deletes the old blob."""

    def stored_ids(self) -> Iterable[str]:
        """Every committed blob's id (for the sweep of orphans at start)."""


def plan(segments: Segments, start: int, end: int) -> list[tuple[str, int, int, int]]:
    """The blobs that hold bytes `start`..`end` of an object: (blob id, first, last, the
    blob's size), offsets within each blob, inclusive."""
    pieces = []
    offset = 0
    for blob_id, size in segments:
        size = int(size)  # type: ignore[call-overload]
        seg_start, seg_end = offset, offset + size - 1
        offset += size
        if size == 0 or seg_end < start or seg_start > end:
            continue
        pieces.append((str(blob_id), max(start, seg_start) - seg_start,
                       min(end, seg_end) - seg_start, size))
    return pieces


def open_blob_store(config: CloudConfig) -> BlobStore:
    """The driver WALRUS_BACKEND names."""
    if config.WALRUS_BACKEND == "s3":
        from walrus.s3_blobs import S3BlobStore, S3Location

        return S3BlobStore(S3Location.of(config),
                           config.EUCASIM_HOME / "walrus" / "s3-bucket-owner")
    from walrus.file_blobs import FileBlobStore

    return FileBlobStore(config.EUCASIM_HOME / "walrus" / "objects")
