"""Carrying out lifecycle rules: one pass over every bucket that has some, at a given moment,
and the scheduler that runs a pass every so often by its clock.

The moment is always given (`run(now)`): the scheduler asks its clock, a test or an
administrator passes its own through the internal route, so expiry is tested without waiting.
Each change is its own small write transaction that checks, inside it, that what it is about
to expire is still the version it looked at, so a PUT racing the pass is never lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from services.db import Database
from services.messages.walrus import LIFECYCLE_ROUTE, LifecycleReport, RunLifecycle
from walrus import lifecycle, versions
from walrus.blobs import BlobStore
from walrus.bucket_cache import BucketCache
from walrus.models import Bucket, Object, ObjectVersion, Part, Upload

log = logging.getLogger("walrus.lifecycle")
BATCH = 500


@dataclass
class Report:
    expired: int = 0            # current objects deleted (unversioned bucket)
    markers_added: int = 0      # current versions expired behind a delete marker
    markers_removed: int = 0    # expired object delete markers removed
    noncurrent_removed: int = 0
    uploads_aborted: int = 0


def _naive(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now


class LifecycleRunner:
    def __init__(self, db: Database, blobs: BlobStore, write_lock: threading.Lock,
                 buckets: BucketCache) -> None:
        self._db = db
        self._blobs = blobs
        self._lock = write_lock
        self._buckets = buckets

    def run(self, now: datetime) -> Report:
        now = _naive(now)
        report = Report()
        with self._db.session() as db:
            names = list(db.scalars(select(Bucket.name).where(Bucket.lifecycle.is_not(None))))
        for name in names:
            bucket = self._buckets.get(name)
            if bucket is None or not bucket.lifecycle:
                continue
            rules = [r for r in bucket.lifecycle if r["Status"] == "Enabled"]
            if rules:
                self._current(bucket, rules, now, report)
                self._noncurrent(bucket, rules, now, report)
                self._uploads(bucket, rules, now, report)
        return report

    def _write(self, change: Callable[[Any], list[str]]) -> None:
        with self._lock, self._db.session() as db:
            freed = change(db)
        self._blobs.delete(freed)

    # current versions and expired delete markers

    def _current(self, bucket: Bucket, rules: list[lifecycle.Rule], now: datetime,
                 report: Report) -> None:
        expiring = [r for r in rules if "Expiration" in r]
        if not expiring:
            return
        after = ""
        while True:
            with self._db.session() as db:
                rows = db.scalars(select(Object).where(Object.bucket == bucket.name,
                                                       Object.key > after)
                                  .order_by(Object.key).limit(BATCH)).all()
            for row in rows:
                self._one_current(bucket, expiring, row, now, report)
            if len(rows) < BATCH:
                return
            after = rows[-1].key

    def _one_current(self, bucket: Bucket, rules: list[lifecycle.Rule], row: Object,
                     now: datetime, report: Report) -> None:
        covering = [r for r in rules if lifecycle.covers(r, row.key, row.size, row.tags or [])]
        if row.delete_marker:
            if any(r["Expiration"].get("ExpiredObjectDeleteMarker") for r in covering) \
                    or (bucket.versioning and any(
                        "Days" in r["Expiration"] or "Date" in r["Expiration"] for r in covering)):
                self._drop_lone_marker(bucket, row, report)
            return
        if not any(lifecycle.expiration_due(r, row.last_modified, now) for r in covering):
            return

        def expire(db: Any) -> list[str]:
            current = db.get(Object, (row.bucket, row.key))
            if current is None or current.version_id != row.version_id \
                    or current.last_modified != row.last_modified or current.delete_marker:
                return []  # changed since it was looked at: not this pass's to expire
            if bucket.versioning is None:
                db.delete(current)
                report.expired += 1
                return [str(s[0]) for s in current.segments]
            report.markers_added += 1
            _, freed = versions.add_delete_marker(db, row.bucket, row.key, bucket.versioning,
                                                  (bucket.owner_id, bucket.owner_name))
            return freed

        self._write(expire)

    def _drop_lone_marker(self, bucket: Bucket, row: Object, report: Report) -> None:
        """A delete marker with no older version behind it hides nothing: S3 removes it."""
        def drop(db: Any) -> list[str]:
            older = db.scalar(select(ObjectVersion.version_id).where(
                ObjectVersion.bucket == row.bucket, ObjectVersion.key == row.key).limit(1))
            current = db.get(Object, (row.bucket, row.key))
            if older is not None or current is None or current.version_id != row.version_id:
                return []
            report.markers_removed += 1
            _, freed = versions.remove(db, row.bucket, row.key, row.version_id)
            return freed

        self._write(drop)

    # noncurrent versions

    def _noncurrent(self, bucket: Bucket, rules: list[lifecycle.Rule], now: datetime,
                    report: Report) -> None:
        expiring = [r for r in rules if "NoncurrentVersionExpiration" in r]
        if not expiring:
            return
        with self._db.session() as db:
            keys = list(db.scalars(select(ObjectVersion.key).where(
                ObjectVersion.bucket == bucket.name).distinct().order_by(ObjectVersion.key)))
        for key in keys:
            with self._db.session() as db:
                older = db.scalars(select(ObjectVersion).where(
                    ObjectVersion.bucket == bucket.name, ObjectVersion.key == key)
                    .order_by(ObjectVersion.seq.desc())).all()
            for rank, version in enumerate(older):
                if self._noncurrent_due(expiring, version, rank, now):
                    self._remove_version(version, report)

    @staticmethod
    def _noncurrent_due(rules: list[lifecycle.Rule], version: ObjectVersion, rank: int,
                        now: datetime) -> bool:
        for rule in rules:
            if not lifecycle.covers(rule, version.key, version.size, version.tags or []):
                continue
            spec = rule["NoncurrentVersionExpiration"]
            # the newest N noncurrent versions are kept, however old
            if rank < spec.get("NewerNoncurrentVersions", 0):
                continue
            if lifecycle.due(version.noncurrent_since, spec["NoncurrentDays"]) <= now:
                return True
        return False

    def _remove_version(self, version: ObjectVersion, report: Report) -> None:
        def remove(db: Any) -> list[str]:
            removed, freed = versions.remove(db, version.bucket, version.key, version.version_id)
            if removed is not None:
                report.noncurrent_removed += 1
            return freed

        self._write(remove)

    # incomplete multipart uploads

    def _uploads(self, bucket: Bucket, rules: list[lifecycle.Rule], now: datetime,
                 report: Report) -> None:
        aborting = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
        if not aborting:
            return
        with self._db.session() as db:
            uploads = db.scalars(select(Upload).where(Upload.bucket == bucket.name)).all()
        for upload in uploads:
            if not any(upload.key.startswith(r["Filter"]["Prefix"] or "")
                       and lifecycle.due(upload.initiated,
                                         r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
                       <= now for r in aborting):
                continue

            def abort(db: Any, upload_id: str = upload.upload_id) -> list[str]:
                blobs = list(db.scalars(select(Part.blob_id).where(Part.upload_id == upload_id)))
                found = db.get(Upload, upload_id)
                if found is None:
                    return []
                for part in db.scalars(select(Part).where(Part.upload_id == upload_id)):
                    db.delete(part)
                db.delete(found)
                report.uploads_aborted += 1
                # an upload on its cluster's own (walrus/s3_multipart.py) goes with its blob
                return blobs + ([found.blob_id] if found.blob_id else [])

            self._write(abort)


class LifecycleScheduler:
    """Runs a pass every `interval` seconds by `clock` in a daemon thread. `run_now` asks for a
    pass at once (what the scheduler does when its clock says a pass is due)."""

    def __init__(self, runner: LifecycleRunner, clock: Callable[[], datetime],
                 interval: float) -> None:
        self._runner = runner
        self._clock = clock
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="walrus-lifecycle", daemon=True)
        self.last: Report | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_now(self) -> None:
        self._wake.set()

    def pass_once(self) -> Report:
        self.last = self._runner.run(self._clock())
        return self.last

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.pass_once()
            except Exception:  # a failed pass is retried at the next one
                log.exception("lifecycle pass failed")


def lifecycle_router(scheduler: LifecycleScheduler, runner: LifecycleRunner,
                     internal_auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(internal_auth)])

    @router.post(LIFECYCLE_ROUTE, response_model=LifecycleReport)
    async def run(body: RunLifecycle) -> Any:
        if body.now is None:
            report = await run_in_threadpool(scheduler.pass_once)
        else:
            report = await run_in_threadpool(runner.run, body.now)
        return LifecycleReport(**asdict(report))

    return router
