"""Snapshots of one zone's volumes: the point-in-time step (the storage backend's `freeze`:
a file clone or an RBD snapshot, under the volume's lock, while the request waits), then the
upload to Walrus in the background (sc/snapstore.py) with `progress` climbing to 100, and what
a restore may start from.

A snapshot's `staging_path` is the backend's handle of its point in time while the backend
holds it: a frozen file until its upload ends, an RBD snapshot until the snapshot (or its
volume) is deleted — what a new volume can be cloned from."""

from __future__ import annotations

import logging
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sc.faults import StorageFault, incorrect_state, snapshot_not_found, volume_not_found
from sc.jobs import Jobs, KeyedLocks
from sc.models import Snapshot, Volume
from sc.snapstore import Cancelled, SnapshotStore, bucket_for
from sc.storage import VolumeStorage
from sc.states import move_snapshot, server_error
from services.clock import aware, utcnow
from services.db import Database
from services.ids import SNAPSHOT_ID, VOLUME_ID
from services.messages.storage import (CreateSnapshot, SnapshotInfo, SnapshotList, SnapshotManifest,
                                       StateReason)
from services.tracing import TraceRecorder

log = logging.getLogger("sc.snapshots")


def check_snapshot_id(snapshot_id: str) -> None:
    if not SNAPSHOT_ID.match(snapshot_id):
        raise StorageFault(400, "InvalidSnapshotID.Malformed", f'Invalid id: "{snapshot_id}"')


def snapshot_info(row: Snapshot) -> SnapshotInfo:
    reason = StateReason(code=row.reason_code, message=row.reason_message or "") if row.reason_code else None
    return SnapshotInfo(snapshot_id=row.id, volume_id=row.volume_id,
                        volume_size_gib=row.volume_size_gib, state=row.state,  # type: ignore[arg-type]
                        progress=row.progress, started_at=aware(row.started_at),  # type: ignore[arg-type]
                        completed_at=aware(row.completed_at), reason=reason, bucket=row.bucket,
                        freeze_method=row.freeze_method, freeze_ms=row.freeze_ms,
                        data_bytes=row.data_bytes, uploaded_bytes=row.uploaded_bytes, parts=row.parts)


class Snapshots:
    def __init__(self, db: Database, storage: VolumeStorage, store: SnapshotStore, part_size: int,
                 jobs: Jobs, locks: KeyedLocks, recorder: TraceRecorder) -> None:
        self.db = db
        self.storage = storage
        self.store = store
        self.part_size = part_size
        self.jobs = jobs
        self.locks = locks
        self.recorder = recorder

    def _get(self, session: Session, snapshot_id: str) -> Snapshot:
        check_snapshot_id(snapshot_id)
        row = session.get(Snapshot, snapshot_id)
        if row is None or row.state == "deleted":
            raise snapshot_not_found(snapshot_id)
        return row

    def describe(self, snapshot_id: str) -> SnapshotInfo:
        with self.db.session() as session:
            return snapshot_info(self._get(session, snapshot_id))

    def list(self) -> SnapshotList:
        with self.db.session() as session:
            rows = session.scalars(select(Snapshot).where(Snapshot.state != "deleted")
                                   .order_by(Snapshot.started_at))
            return SnapshotList(snapshots=[snapshot_info(r) for r in rows])

    def create(self, body: CreateSnapshot) -> SnapshotInfo:
        check_snapshot_id(body.snapshot_id)
        if not VOLUME_ID.match(body.volume_id):
            raise StorageFault(400, "InvalidVolumeID.Malformed", f'Invalid id: "{body.volume_id}"')
        with self.locks(body.volume_id), self.db.session() as session:
            existing = session.get(Snapshot, body.snapshot_id)
            if existing is not None:
                if existing.volume_id == body.volume_id and existing.state != "deleted":
                    return snapshot_info(existing)
                raise StorageFault(400, "InvalidParameterValue",
                                   f"The snapshot id '{body.snapshot_id}' is already used.")
            volume = session.get(Volume, body.volume_id)
            if volume is None or volume.state == "deleted":
                raise volume_not_found(body.volume_id)
            if volume.state not in ("available", "in-use"):
                raise incorrect_state(f"The volume '{volume.id}' is {volume.state}; only an "
                                      "available or in-use volume can be snapshotted.")
            started = time.perf_counter()
            frozen = self.storage.freeze(volume.path, body.snapshot_id)
            freeze_ms = (time.perf_counter() - started) * 1000
            method = frozen.method
            try:
                now = utcnow()
                row = Snapshot(id=body.snapshot_id, volume_id=volume.id, volume_size_gib=volume.size_gib,
                               state="pending", progress=0, bucket=bucket_for(body.snapshot_id),
                               staging_path=frozen.handle, freeze_method=method, freeze_ms=freeze_ms,
                               started_at=now, updated_at=now)
                session.add(row)
                session.flush()
            except BaseException:
                self.storage.forget(frozen.handle)
                raise
            info = snapshot_info(row)
        self.recorder.record("decided", f"{body.snapshot_id}: {body.volume_id} frozen by "
                             f"{method} in {freeze_ms:.1f} ms; uploading to {row.bucket}")
        self.jobs.submit(body.snapshot_id, lambda: self._upload(body.snapshot_id))
        return info

    def _upload(self, snapshot_id: str) -> None:
        with self.db.session() as session:
            row = session.get(Snapshot, snapshot_id)
            if row is None or row.state != "pending" or not row.staging_path:
                return
            frozen, volume_id = row.staging_path, row.volume_id
        try:
            manifest = self._send(snapshot_id, frozen, volume_id)
        except Cancelled:
            return  # the frozen copy stays; the next start resumes the upload
        except Exception as exc:
            log.exception("uploading %s", snapshot_id)
            with self.db.session() as session:
                row = session.get(Snapshot, snapshot_id)
                if row is not None:
                    move_snapshot(row, "error", server_error(f"uploading to Walrus failed: {exc}"))
                    row.staging_path = None
            try:
                self.storage.forget(frozen)
            except Exception:
                log.exception("dropping the point in time %s", frozen)
            return
        held = self.storage.holds_snapshots
        with self.db.session() as session:
            row = session.get(Snapshot, snapshot_id)
            if row is not None:
                row.parts = len(manifest.parts)
                row.uploaded_bytes = row.data_bytes
                row.staging_path = frozen if held else None
                move_snapshot(row, "completed")
        # Completed first, the frozen copy dropped after: removing 100 MiB of extents takes
        # ext4 tens of ms that the snapshot need not wait for. A crash in between leaves a
        # frozen file of no pending snapshot, which the sweep at the next start removes.
        try:
            self.storage.uploaded(frozen)
        except Exception:
            log.exception("dropping the frozen copy %s", frozen)
        self.recorder.record("decided", f"{snapshot_id}: {len(manifest.parts)} parts in "
                             f"{bucket_for(snapshot_id)}")

    def _send(self, snapshot_id: str, frozen: str, volume_id: str) -> SnapshotManifest:
        with self.storage.open_frozen(frozen) as reader:
            total = reader.data_bytes
            with self.db.session() as session:
                row = session.get(Snapshot, snapshot_id)
                assert row is not None
                row.data_bytes, row.uploaded_bytes, row.progress = total, 0, 0
            done = 0
            last = -1
            lock = threading.Lock()

            def progress(length: int) -> None:
                nonlocal done, last
                with lock:
                    done += length
                    # 100 only once the manifest is in: a snapshot at 100% is restorable.
                    percent = min(99, done * 100 // max(total, 1))
                    if percent == last:
                        return
                    last = percent
                    uploaded = done
                with self.db.session() as session:
                    current = session.get(Snapshot, snapshot_id)
                    if current is not None and current.state == "pending":
                        current.progress = max(current.progress, percent)
                        current.uploaded_bytes = max(current.uploaded_bytes, uploaded)

            return self.store.upload(reader, snapshot_id=snapshot_id, volume_id=volume_id,
                                     part_size=self.part_size, progress=progress,
                                     stop=self.jobs.stop)

    def delete(self, snapshot_id: str) -> SnapshotInfo:
        with self.db.session() as session:
            row = self._get(session, snapshot_id)
            if row.state == "pending":
                raise incorrect_state(f"The snapshot '{snapshot_id}' is still being taken "
                                      f"({row.progress}%).")
            move_snapshot(row, "deleting")
            handle = row.staging_path
        try:
            if handle:
                self.storage.forget(handle)
            self.store.delete(snapshot_id)
        except Exception as exc:
            with self.db.session() as session:
                row = self._get(session, snapshot_id)
                move_snapshot(row, "error", server_error(f"deleting from Walrus failed: {exc}"))
            raise StorageFault(503, "ServiceUnavailable",
                               f"Walrus did not delete {snapshot_id}: {exc}") from exc
        with self.db.session() as session:
            row = self._get(session, snapshot_id)
            row.staging_path = None
            move_snapshot(row, "deleted")
            return snapshot_info(row)

    def restorable(self, snapshot_id: str) -> SnapshotManifest:
        """The manifest a new volume restores from. A snapshot this SC took must be completed;
        one it does not know (another zone's) is read from Walrus, where the manifest's
        presence means it is complete."""
        check_snapshot_id(snapshot_id)
        with self.db.session() as session:
            row = session.get(Snapshot, snapshot_id)
            if row is not None:
                if row.state == "pending":
                    raise incorrect_state(f"The snapshot '{snapshot_id}' is still being taken "
                                          f"({row.progress}%).")
                if row.state != "completed":
                    raise snapshot_not_found(snapshot_id)
        try:
            manifest = self.store.manifest(snapshot_id)
        except (BotoCoreError, ClientError) as exc:
            raise StorageFault(503, "ServiceUnavailable",
                               f"Walrus did not give the manifest of {snapshot_id}: {exc}") from exc
        if manifest is None:
            raise snapshot_not_found(snapshot_id)
        return manifest

    def held(self, snapshot_id: str) -> str | None:
        """The handle of a completed snapshot's point in time where the backend still holds
        it (an RBD snapshot in the pool): what a new volume is cloned from."""
        with self.db.session() as session:
            row = session.get(Snapshot, snapshot_id)
            if row is None or row.state != "completed":
                return None
            return row.staging_path

    def recover(self) -> None:
        """At start: resume uploads a previous SC did not finish, and drop frozen copies that
        belong to no pending snapshot."""
        keep: set[str] = set()
        with self.db.session() as session:
            for row in session.scalars(select(Snapshot).where(Snapshot.state == "pending")):
                if row.staging_path and self.storage.frozen_exists(row.staging_path):
                    keep.add(row.staging_path)
                    self.jobs.submit(row.id, lambda sid=row.id: self._upload(sid))  # type: ignore[misc]
                else:
                    move_snapshot(row, "error", server_error(
                        "the SC stopped before the snapshot's frozen copy was kept"))
        self.storage.sweep(keep)
