"""Snapshots in Walrus, over S3: the bucket `snapset-<snapshot id>` holds `part-<index>`
objects and, written last, `manifest.json` (services.messages.storage.SnapshotManifest).

Only parts that hold data are stored: the frozen file is walked with SEEK_DATA/SEEK_HOLE, so a
10 GiB volume holding 100 MiB reads and sends about 100 MiB; a part that reads as all zeros is
left out too. Every part carries its SHA-256 in the manifest and a restore checks each one
before writing it, so a corrupted part is named, not copied into a new volume."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sc.files import data_extents
from services.bundles.upload import ensure_bucket
from services.clock import utcnow
from services.messages.storage import SnapshotManifest, SnapshotPart

MANIFEST_KEY = "manifest.json"
Progress = Callable[[int], None]  # called with the bytes of each part done


class Cancelled(Exception):
    """The SC is stopping; the work resumes at its next start."""


class CorruptPart(Exception):
    """A part whose bytes do not match the manifest; the message names it."""


def bucket_for(snapshot_id: str) -> str:
    return f"snapset-{snapshot_id}"


def part_key(index: int) -> str:
    return f"part-{index:08d}"


def data_parts(fd: int, size: int, part_size: int) -> list[tuple[int, int]]:
    """(index, length) of every part that overlaps data, in order."""
    indexes: list[int] = []
    for start, end in data_extents(fd, size):
        first, last = start // part_size, (end - 1) // part_size
        for index in range(max(first, indexes[-1] + 1 if indexes else first), last + 1):
            indexes.append(index)
    return [(i, min(part_size, size - i * part_size)) for i in indexes]


def _is_zero(data: bytes) -> bool:
    return data.count(0) == len(data)


class SnapshotStore:
    """Upload, restore and delete snapshots with one boto3 S3 client (thread-safe), moving
    `workers` parts at a time."""

    def __init__(self, s3: Callable[[], Any], *, workers: int = 4) -> None:
        self._s3_factory = s3
        self._s3: Any = None
        self._lock = threading.Lock()
        self.workers = workers

    @property
    def s3(self) -> Any:
        # Built on first use: the cloud admin's credentials exist once the CLC has started.
        with self._lock:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            return self._s3

    def plan(self, frozen: Path, part_size: int) -> list[tuple[int, int]]:
        fd = os.open(frozen, os.O_RDONLY)
        try:
            return data_parts(fd, os.fstat(fd).st_size, part_size)
        finally:
            os.close(fd)

    def upload(self, frozen: Path, *, snapshot_id: str, volume_id: str, part_size: int,
               progress: Progress, stop: threading.Event) -> SnapshotManifest:
        bucket = bucket_for(snapshot_id)
        s3 = self.s3
        ensure_bucket(s3, bucket)
        fd = os.open(frozen, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            plan = data_parts(fd, size, part_size)

            def send(index: int, length: int) -> SnapshotPart | None:
                if stop.is_set():
                    raise Cancelled()
                data = os.pread(fd, length, index * part_size)
                if len(data) != length:
                    raise OSError(f"short read of part {index} from {frozen}")
                if _is_zero(data):
                    progress(length)
                    return None
                digest = hashlib.sha256(data).hexdigest()
                s3.put_object(Bucket=bucket, Key=part_key(index), Body=data)
                progress(length)
                return SnapshotPart(index=index, key=part_key(index), length=length, sha256=digest)

            parts = [p for p in self._run(send, plan) if p is not None]
        finally:
            os.close(fd)
        manifest = SnapshotManifest(snapshot_id=snapshot_id, volume_id=volume_id, size_bytes=size,
                                    part_size=part_size, parts=sorted(parts, key=lambda p: p.index),
                                    created_at=utcnow())
        s3.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=manifest.model_dump_json().encode())
        return manifest

    def manifest(self, snapshot_id: str) -> SnapshotManifest | None:
        """The snapshot's manifest, or None when Walrus has no complete snapshot of that id."""
        try:
            body = self.s3.get_object(Bucket=bucket_for(snapshot_id), Key=MANIFEST_KEY)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchBucket", "NoSuchKey", "404"):
                return None
            raise
        return SnapshotManifest.model_validate_json(body)

    def restore(self, manifest: SnapshotManifest, target: Path, *, progress: Progress,
                stop: threading.Event) -> None:
        """Write every part of `manifest` into `target` (a sparse file at least as large),
        checking each part's length and SHA-256 before it is written."""
        bucket = bucket_for(manifest.snapshot_id)
        s3 = self.s3
        fd = os.open(target, os.O_WRONLY)
        try:
            def fetch(part: SnapshotPart) -> None:
                if stop.is_set():
                    raise Cancelled()
                data = s3.get_object(Bucket=bucket, Key=part.key)["Body"].read()
                digest = hashlib.sha256(data).hexdigest()
                if len(data) != part.length or digest != part.sha256:
                    raise CorruptPart(
                        f"part {part.key} (bytes {part.index * manifest.part_size}-"
                        f"{part.index * manifest.part_size + part.length - 1}) of "
                        f"{manifest.snapshot_id} failed its SHA-256 check: expected {part.sha256}, "
                        f"got {digest} over {len(data)} bytes")
                os.pwrite(fd, data, part.index * manifest.part_size)
                progress(part.length)

            self._run(fetch, [(p,) for p in manifest.parts])
            os.fsync(fd)
        finally:
            os.close(fd)

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
