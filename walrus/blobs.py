"""Where object bodies live: one small interface, two drivers.

A blob is an immutable body named by a random id (never by its key: no key can name anything
outside the store). A row names its body as segments, `[[blob id, size], ...]`: a whole object
is one segment, a completed multipart object one segment per part, in order, so that the row
alone gives each part's bounds (GET ?partNumber=N). On files each part is a blob of its own;
on an S3 cluster, where a Walrus upload is the cluster's upload (ClusterUploads), every part
names the one blob the cluster assembled, with its offset in it: `[blob id, size, offset]`
(and the blob's size fourth when the blob also holds parts the object left out).
Everything Walrus knows about an object (its key, ETag, checksums, ACL, versions, tags) is in
its database; a driver keeps bytes only.

- `file` (walrus/file_blobs.py): files under $EUCASIM_HOME/walrus/objects, fsynced.
- `s3` (walrus/s3_blobs.py): objects in a bucket of an existing S3 cluster (Ceph RGW, MinIO,
  AWS S3), written and read with Walrus's own credentials for that cluster.

Every call here blocks (disk or network): Walrus makes them in worker threads only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from threading import Lock
from typing import Any, Protocol

from services.config import CloudConfig

READ_CHUNK = 1024 * 1024
BLOB_ID = re.compile(r"^[0-9a-f]{32}$")

# (blob id, size[, offset in the blob]) in order: a whole object or a part.
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


class UploadGone(Exception):
    """The cluster no longer has the upload (aborted, or completed and not by this call)."""


class ClusterUploads(Protocol):
    """A store whose cluster has multipart uploads of its own, onto which Walrus maps its own
    (walrus/s3_multipart.py): one cluster upload per Walrus upload, on a fresh blob id, part N
    as the cluster's part N. Walrus keeps every part's size, ETag and checksums in its rows
    and runs every check itself; the cluster only holds and assembles the bytes."""

    def begin(self) -> tuple[str, str]:
        """A new cluster upload: (its blob id, the cluster's upload id)."""

    def part_writer(self, blob_id: str, upload_id: str, number: int,
                    size: int | None) -> PartWriter:
        """Part `number`'s body, streamed into the cluster's part (replacing one there)."""

    def copy_part(self, blob_id: str, upload_id: str, number: int, source: str, first: int,
                  last: int) -> str:
        """Part `number` copied by the cluster from bytes first..last of blob `source`;
        returns the cluster's ETag of the part."""

    def part_lock(self, blob_id: str, number: int) -> Lock:
        """Held from the moment the cluster may complete part `number` until its row is
        written: of two uploads of one part, the last on the cluster is the last row."""

    def complete(self, blob_id: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """Assemble the blob from these (part number, cluster ETag); raises UploadGone, or
        PartMismatch when the cluster's part is not the one named."""

    def abort(self, blob_id: str, upload_id: str) -> None:
        """Drop the upload, and the blob if a completion had reached the cluster."""

    def open_uploads(self) -> Iterable[tuple[str, str]]:
        """(blob id, upload id) of every upload the cluster holds unfinished on a blob id."""


class PartMismatch(Exception):
    """The cluster's part is not the one Walrus's row describes (a re-upload whose row was
    not written, or two uploads of one part at once): the completion is refused."""


class PartWriter(BlobWriter, Protocol):
    cluster_etag: str  # after commit()

    def release(self) -> None:
        """Release the part's lock commit() took (once the part's row is written)."""


def cluster_uploads(store: Any) -> ClusterUploads | None:
    """The store's ClusterUploads, or None (files: each part is a blob of its own)."""
    return getattr(store, "uploads", None)


def plan(segments: Segments, start: int, end: int) -> list[tuple[str, int, int, int]]:
    """The blobs that hold bytes `start`..`end` of an object: (blob id, first, last, the
    blob's size), offsets within each blob, inclusive. Consecutive parts of one blob are one
    piece (one read)."""
    spans: list[tuple[str, int, int]] = []
    totals: dict[str, int] = {}
    for segment in segments:
        blob_id, size = str(segment[0]), int(segment[1])  # type: ignore[call-overload]
        at = int(segment[2]) if len(segment) > 2 else 0  # type: ignore[call-overload]
        whole = int(segment[3]) if len(segment) > 3 else at + size  # type: ignore[call-overload]
        spans.append((blob_id, at, size))
        totals[blob_id] = max(totals.get(blob_id, 0), whole)
    pieces: list[tuple[str, int, int, int]] = []
    offset = 0
    for blob_id, at, size in spans:
        seg_start, seg_end = offset, offset + size - 1
        offset += size
        if size == 0 or seg_end < start or seg_start > end:
            continue
        lo, hi = at + max(start, seg_start) - seg_start, at + min(end, seg_end) - seg_start
        if pieces and pieces[-1][0] == blob_id and pieces[-1][2] + 1 == lo:
            pieces[-1] = (blob_id, pieces[-1][1], hi, totals[blob_id])
        else:
            pieces.append((blob_id, lo, hi, totals[blob_id]))
    return pieces


def open_blob_store(config: CloudConfig) -> BlobStore:
    """The driver WALRUS_BACKEND names."""
    if config.WALRUS_BACKEND == "s3":
        from walrus.s3_blobs import S3BlobStore, S3Location

        return S3BlobStore(S3Location.of(config),
                           config.EUCASIM_HOME / "walrus" / "s3-bucket-owner",
                           config.WALRUS_S3_CACHE_BYTES)
    from walrus.file_blobs import FileBlobStore

    return FileBlobStore(config.EUCASIM_HOME / "walrus" / "objects")
