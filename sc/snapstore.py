"""Snapshots in Walrus, over S3: the bucket `snapset-<snapshot id>` holds `part-<n>` objects
and, written last, `manifest.json` (services.messages.storage.SnapshotManifest).

Only data is stored: the point in time is read through its backend's DataReader (sc/storage.py:
a frozen file walked with SEEK_DATA/SEEK_HOLE, or an RBD snapshot's `rbd export-diff` stream),
runs that read as all zeros are dropped, and what is left is packed into parts of up to the part
size, each listing the (offset, length) extents it carries. A 10 GiB volume holding 100 MiB in a
hundred scattered runs reads and sends about 100 MiB, in 7 requests (16 MiB parts) rather than
a hundred. Every part carries its CRC32C in the manifest and a restore checks each one before writing it,
so a corrupted part is named, not copied into a new volume. (A CRC32C rather than a SHA-256:
it is there to catch bytes gone bad, which it does, at a tenth of the cost with the CPU's CRC
instruction; one who can rewrite a part in Walrus can rewrite the manifest beside it, so a
cryptographic hash would add no protection. Manifests written before carry a SHA-256, which
is checked as before.)"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

import crc32c
from botocore.exceptions import ClientError

from sc.snapshot_http import SnapshotHTTP
from sc.storage import DataReader, DataWriter
from services.clock import utcnow
from services.messages.storage import SnapshotExtent, SnapshotManifest, SnapshotPart

MANIFEST_KEY = "manifest.json"
Progress = Callable[[int], None]  # called with the bytes of each part done


class Cancelled(Exception):
    """The SC is stopping; the work resumes at its next start."""


class CorruptPart(Exception):
    """A part whose bytes do not match the manifest; the message names it."""


def crc32c_b64(data: bytes | bytearray | memoryview) -> str:
    """x-amz-checksum-crc32c's value: the big-endian CRC32C, base64."""
    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode()


def bucket_for(snapshot_id: str) -> str:
    return f"snapset-{snapshot_id}"


def part_key(index: int) -> str:
    return f"part-{index:08d}"


def check(snapshot_id: str, part: SnapshotPart, data: bytes) -> None:
    """Raise CorruptPart, naming the part and where its bytes go, unless `data` has the part's
    length and checksum (its CRC32C; a manifest written before those, its SHA-256)."""
    if part.crc32c is not None:
        name, expected, got = "CRC32C", part.crc32c, crc32c_b64(data)
    elif part.sha256 is not None:
        name, expected, got = "SHA-256", part.sha256, hashlib.sha256(data).hexdigest()
    else:
        name, expected, got = "checksum", "one in the manifest", "none"
    if len(data) != part.length or got != expected:
        where = ", ".join(f"bytes {e.offset}-{e.offset + e.length - 1}" for e in part.extents[:3])
        raise CorruptPart(
            f"part {part.key} ({where}{', …' if len(part.extents) > 3 else ''}) of {snapshot_id} "
            f"failed its {name} check: expected {expected}, got {got} over {len(data)} bytes")


class _Buffers:
    """At most `count` part buffers of `size` bytes, each reused once its part is sent by the
    uploads under way: a new 16 MiB bytearray costs its zeroing and a page fault per 4 KiB,
    which reuse skips. `take` blocks while all are out, which bounds the parts in memory,
    whatever the number of uploads under way. Once every buffer is back (no upload under way)
    they are let go: an idle SC holding `count` × 16 MiB for the next snapshot would cost more
    than the few hundredths of a second of CPU it saves that snapshot."""

    def __init__(self, size: int, count: int) -> None:
        self._size = size
        self._free: list[bytearray] = []
        self._out = 0
        self._slots = threading.BoundedSemaphore(count)
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        self._slots.acquire()
        with self._lock:
            self._out += 1
            return self._free.pop() if self._free else bytearray(self._size)

    def give_back(self, buffer: bytearray) -> None:
        with self._lock:
            self._out -= 1
            if self._out:
                self._free.append(buffer)
            else:
                self._free.clear()
        self._slots.release()

    def kept(self) -> int:
        with self._lock:
            return len(self._free)


# Runs of zeros are found by comparing with this, a megabyte at a time.
_ZEROS = bytes(1 << 20)


def _all_zeros(buffer: bytearray, start: int, length: int) -> bool:
    end = start + length
    while start < end:
        step = min(len(_ZEROS), end - start)
        if not buffer.startswith(_ZEROS[:step], start):
            return False
        start += step
    return True


class SnapshotStore:
    """Upload, restore and delete snapshots, moving `workers` parts at a time: every request
    of an upload or a restore through `http` (sc/snapshot_http.py), a delete's listing and
    batch delete with a boto3 S3 client (thread-safe), built when first needed."""

    def __init__(self, s3: Callable[[], Any], http: SnapshotHTTP, *, workers: int = 4) -> None:
        self._s3_factory = s3
        self._s3: Any = None
        self._lock = threading.Lock()
        self.http = http
        self.workers = workers
        self._buffers: dict[int, _Buffers] = {}  # by part size

    def _buffers_of(self, part_size: int) -> _Buffers:
        with self._lock:
            if part_size not in self._buffers:
                # +1: the part being filled while `workers` are sent
                self._buffers[part_size] = _Buffers(part_size, self.workers + 1)
            return self._buffers[part_size]

    @property
    def s3(self) -> Any:
        # Built on first use: the cloud admin's credentials exist once the CLC has started.
        with self._lock:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            return self._s3

    def upload(self, reader: DataReader, *, snapshot_id: str, volume_id: str, part_size: int,
               progress: Progress, stop: threading.Event) -> SnapshotManifest:
        """Read the data pieces in order, drop those that are all zeros, pack the rest into
        parts of up to `part_size` bytes (so data scattered in small runs costs a few large
        requests, not one each) and send `workers` parts at a time."""
        bucket = bucket_for(snapshot_id)
        parts: list[SnapshotPart] = []
        buffers = self._buffers_of(part_size)
        size = reader.size
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sc-part") as pool:
            futures: list[Future[SnapshotPart]] = []
            # The bucket is made while the first parts are read; each PUT waits for it.
            made = pool.submit(self.http.create_bucket, bucket)

            def send(index: int, buffer: bytearray, length: int,
                     extents: list[SnapshotExtent]) -> SnapshotPart:
                data = memoryview(buffer)[:length]
                try:
                    if stop.is_set():
                        raise Cancelled()
                    # One CRC32C (hardware: a tenth of a SHA-256) serves the manifest, which a
                    # restore checks every part against, and Walrus's check of the body on
                    # receipt. The PUT is UNSIGNED-PAYLOAD rather than hashing the body again
                    # to sign it.
                    checksum = crc32c_b64(data)
                    made.result()
                    self.http.put(bucket, part_key(index), data, checksum)
                    progress(len(data))
                    return SnapshotPart(index=index, key=part_key(index), length=len(data),
                                        crc32c=checksum, extents=extents)
                finally:
                    buffers.give_back(buffer)

            def flush(buffer: bytearray, length: int, extents: list[SnapshotExtent]) -> None:
                for future in futures:
                    if future.done() and future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
                futures.append(pool.submit(send, len(futures), buffer, length, extents))

            # Each piece is read straight into its place in the part being filled: no
            # slicing or joining copies of the data.
            buffer: bytearray | None = buffers.take()
            extents: list[SnapshotExtent] = []
            filled = 0
            try:
                for offset, length in reader.pieces(part_size):
                    while length:
                        if stop.is_set():
                            raise Cancelled()
                        if buffer is None:
                            buffer = buffers.take()
                        take = min(length, part_size - filled)
                        reader.read_into(offset, memoryview(buffer)[filled:filled + take])
                        # Written zeros read back as a hole would; a memcmp finds them.
                        if _all_zeros(buffer, filled, take):
                            progress(take)
                        else:
                            if extents and extents[-1].offset + extents[-1].length == offset:
                                extents[-1].length += take  # a run read in several pieces
                            else:
                                extents.append(SnapshotExtent(offset=offset, length=take))
                            filled += take
                            if filled == part_size:
                                flush(buffer, filled, extents)
                                buffer, extents, filled = None, [], 0
                        offset += take
                        length -= take
                if filled:
                    assert buffer is not None
                    flush(buffer, filled, extents)
                    buffer = None
            finally:
                if buffer is not None:  # not handed to a send, which gives its buffer back
                    buffers.give_back(buffer)
            made.result()  # a volume with no data has no part to wait for it
            for future in futures:
                parts.append(future.result())
        manifest = SnapshotManifest(snapshot_id=snapshot_id, volume_id=volume_id, size_bytes=size,
                                    part_size=part_size, parts=parts, created_at=utcnow())
        document = manifest.model_dump_json().encode()
        self.http.put(bucket, MANIFEST_KEY, document, crc32c_b64(document))
        return manifest

    def manifest(self, snapshot_id: str) -> SnapshotManifest | None:
        """The snapshot's manifest, or None when Walrus has no complete snapshot of that id."""
        try:
            body = self.http.get(bucket_for(snapshot_id), MANIFEST_KEY)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchBucket", "NoSuchKey", "404"):
                return None
            raise
        return SnapshotManifest.model_validate_json(body)

    def restore(self, manifest: SnapshotManifest, target: DataWriter, *, progress: Progress,
                stop: threading.Event) -> None:
        """Write every part of `manifest` into `target` (a volume at least as large, reading as
        zeros), checking each part's length and checksum before it is written."""
        bucket = bucket_for(manifest.snapshot_id)

        def fetch(part: SnapshotPart) -> None:
            if stop.is_set():
                raise Cancelled()
            data = self.http.get(bucket, part.key)
            check(manifest.snapshot_id, part, data)
            view = memoryview(data)
            position = 0
            for extent in part.extents:
                target.write(extent.offset, view[position:position + extent.length])
                position += extent.length
            progress(part.length)

        self._run(fetch, [(p,) for p in manifest.parts])

    def delete(self, snapshot_id: str) -> None:
        bucket = bucket_for(snapshot_id)
        s3 = self.s3
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                # The manifest first would be better for readers, but one call is atomic enough:
                # a reader finding no manifest treats the snapshot as gone.
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("NoSuchBucket", "404"):
                raise

    def _run(self, work: Callable[..., Any], items: list[tuple[Any, ...]]) -> list[Any]:
        """`work(*item)` for every item, `workers` at a time; the first failure cancels what
        has not started and is raised."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items)),
                                thread_name_prefix="sc-part") as pool:
            futures: list[Future[Any]] = [pool.submit(work, *item) for item in items]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in futures:
                if future.done() and not future.cancelled() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
