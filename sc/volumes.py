"""Volumes of one zone: their storage (sc/storage.py: sparse files or RBD images), the zone's
room, exports to nodes and restores from snapshots (a clone where the backend still holds the
snapshot's point in time). Routes call these methods (sync: FastAPI runs them in its thread
pool), never the database or the files directly."""

from __future__ import annotations

import logging
import math
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sc.exports import ExportFailed, ExportTarget, VolumeExport
from sc.faults import StorageFault, bad_value, incorrect_state, volume_not_found
from sc.jobs import Jobs, KeyedLocks
from sc.models import Export, Volume
from sc.snapshots import Snapshots
from sc.snapstore import Cancelled, CorruptPart, SnapshotStore
from sc.states import move_volume, server_error
from sc.storage import GIB, StorageFull, VolumeStorage
from services.clock import aware, utcnow
from services.db import Database
from services.ids import VOLUME_ID
from services.messages.storage import (MAX_VOLUME_GIB, MIN_VOLUME_GIB, CreateVolume, SnapshotManifest,
                                       StateReason, VolumeExportInfo, VolumeExportList, VolumeInfo,
                                       VolumeList)
from services.tracing import TraceRecorder

log = logging.getLogger("sc.volumes")


def check_volume_id(volume_id: str) -> None:
    if not VOLUME_ID.match(volume_id):
        raise StorageFault(400, "InvalidVolumeID.Malformed", f'Invalid id: "{volume_id}"')


def check_size(size_gib: int) -> None:
    if not MIN_VOLUME_GIB <= size_gib <= MAX_VOLUME_GIB:
        raise bad_value(f"Volume of {size_gib}GiB is out of range: the size must be between "
                        f"{MIN_VOLUME_GIB} and {MAX_VOLUME_GIB} GiB.")


def volume_info(volume: Volume, exports: int = 0, allocated: int = 0) -> VolumeInfo:
    reason = (StateReason(code=volume.reason_code, message=volume.reason_message or "")
              if volume.reason_code else None)
    return VolumeInfo(volume_id=volume.id, size_gib=volume.size_gib, state=volume.state,  # type: ignore[arg-type]
                      progress=volume.progress, snapshot_id=volume.snapshot_id,
                      created_at=aware(volume.created_at), reason=reason, path=volume.path,  # type: ignore[arg-type]
                      allocated_bytes=allocated, exports=exports)


def export_info(row: Export) -> VolumeExportInfo:
    target = as_target(row)
    return VolumeExportInfo(volume_id=row.volume_id, node=row.node, driver=row.driver,  # type: ignore[arg-type]
                            path=row.path, host=row.host, port=row.port,
                            export_name=row.export_name, user=row.user, uri=target.uri,
                            created_at=aware(row.created_at))  # type: ignore[arg-type]


def as_target(row: Export) -> ExportTarget:
    return ExportTarget(row.driver, row.volume_id, row.path or "", row.host, row.port,
                        row.export_name, row.pid, row.user)


class Volumes:
    def __init__(self, db: Database, storage: VolumeStorage, capacity_gib: int,
                 exporters: dict[str, VolumeExport], driver: str, snapshots: Snapshots,
                 store: SnapshotStore, jobs: Jobs, locks: KeyedLocks, recorder: TraceRecorder) -> None:
        self.db = db
        self.storage = storage
        self.capacity_gib = capacity_gib
        self.exporters = exporters
        self.driver = driver
        self.snapshots = snapshots
        self.store = store
        self.jobs = jobs
        self.locks = locks
        self.recorder = recorder
        # Admission is one decision over every volume: two creates must not both see the room.
        self._admit = threading.Lock()

    # --- look-ups ---------------------------------------------------------------------------

    def _get(self, session: Session, volume_id: str) -> Volume:
        check_volume_id(volume_id)
        volume = session.get(Volume, volume_id)
        if volume is None:
            raise volume_not_found(volume_id)
        return volume

    def _exports(self, session: Session, volume_id: str) -> list[Export]:
        return list(session.scalars(select(Export).where(Export.volume_id == volume_id)
                                    .order_by(Export.id)))

    def provisioned_gib(self, session: Session) -> int:
        total = session.scalar(select(func.coalesce(func.sum(Volume.size_gib), 0))
                               .where(Volume.state != "deleted"))
        return int(total or 0)

    def describe(self, volume_id: str) -> VolumeInfo:
        with self.db.session() as session:
            volume = self._get(session, volume_id)
            return self._info(volume, len(self._exports(session, volume_id)))

    def _info(self, volume: Volume, exports: int = 0) -> VolumeInfo:
        allocated = self.storage.allocated([volume.path]).get(volume.path, 0) \
            if volume.state != "deleted" else 0
        return volume_info(volume, exports, allocated)

    def list(self) -> VolumeList:
        with self.db.session() as session:
            counts = dict(session.execute(select(Export.volume_id, func.count())
                                          .group_by(Export.volume_id)).all())
            rows = list(session.scalars(select(Volume).order_by(Volume.created_at)))
            allocated = self.storage.allocated([v.path for v in rows if v.state != "deleted"])
            volumes = [volume_info(v, counts.get(v.id, 0), allocated.get(v.path, 0)) for v in rows]
            return VolumeList(volumes=volumes, capacity_gib=self.capacity_gib,
                              provisioned_gib=self.provisioned_gib(session))

    # --- create, grow, delete ---------------------------------------------------------------

    def create(self, body: CreateVolume) -> VolumeInfo:
        check_volume_id(body.volume_id)
        manifest: SnapshotManifest | None = None
        if body.snapshot_id is not None:
            manifest = self.snapshots.restorable(body.snapshot_id)
            least = max(1, math.ceil(manifest.size_bytes / GIB))
            size = body.size_gib if body.size_gib is not None else least
            check_size(size)
            if size < least:
                raise bad_value(f"Volume of {size}GiB is smaller than snapshot "
                                f"'{body.snapshot_id}', which needs {least}GiB.")
        elif body.size_gib is None:
            raise bad_value("The request must contain the parameter size or snapshotId.")
        else:
            size = body.size_gib
            check_size(size)
        path = self.storage.locator(body.volume_id)
        clone_from = self.snapshots.held(body.snapshot_id) if body.snapshot_id is not None else None
        cloned = False
        with self._admit, self.db.session() as session:
            existing = session.get(Volume, body.volume_id)
            if existing is not None:
                if (existing.size_gib, existing.snapshot_id) == (size, body.snapshot_id) \
                        and existing.state != "deleted":
                    return self._info(existing, len(self._exports(session, existing.id)))
                raise bad_value(f"The volume id '{body.volume_id}' is already used by another volume.")
            provisioned = self.provisioned_gib(session)
            if provisioned + size > self.capacity_gib:
                raise StorageFault(400, "VolumeLimitExceeded",
                                   f"A volume of {size}GiB does not fit: {provisioned} of "
                                   f"{self.capacity_gib}GiB of this zone's storage are taken.")
            try:
                # Where the backend still holds the snapshot's point in time (RBD), the new
                # volume is a copy-on-write clone of it, whole at once; else a restore from
                # Walrus fills it, part by checked part.
                cloned = clone_from is not None and self.storage.clone(clone_from, path, size * GIB)
                if not cloned:
                    self.storage.create(path, size * GIB)
            except StorageFull as exc:
                raise StorageFault(503, "InsufficientVolumeCapacity",
                                   f"The zone's storage cannot write a volume now: {exc}.") from None
            now = utcnow()
            try:
                volume = Volume(id=body.volume_id, size_gib=size, state="creating", progress=0,
                                snapshot_id=body.snapshot_id, path=str(path), created_at=now,
                                updated_at=now)
                session.add(volume)
                if manifest is None or cloned:
                    move_volume(volume, "available", now=now)
                    volume.progress = 100 if cloned else volume.progress
                session.flush()
            except BaseException:
                self.storage.delete(path)
                raise
            info = volume_info(volume)
        how = f"clone of {clone_from}" if cloned else f"{size}GiB at {path}"
        self.recorder.record("decided", f"{body.volume_id}: {how} ({self.storage.backend}; "
                             f"{provisioned + size} of {self.capacity_gib}GiB provisioned)")
        if manifest is not None and not cloned:
            self.jobs.submit(body.volume_id, lambda: self._restore(body.volume_id, manifest))
        return info

    def _restore(self, volume_id: str, manifest: SnapshotManifest) -> None:
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or volume.state != "creating":
                return
            path = volume.path
        total = sum(p.length for p in manifest.parts) or 1
        done = 0
        last = -1
        lock = threading.Lock()

        def progress(length: int) -> None:
            nonlocal done, last
            with lock:
                done += length
                percent = min(99, done * 100 // total)
                if percent == last:
                    return
                last = percent
            with self.db.session() as session:
                row = session.get(Volume, volume_id)
                if row is not None and row.state == "creating":
                    row.progress = max(row.progress, percent)

        try:
            with self.storage.open_writer(path) as writer:
                self.store.restore(manifest, writer, progress=progress, stop=self.jobs.stop)
        except Cancelled:
            return  # resumed at the next start
        except CorruptPart as exc:
            self._fail_restore(volume_id, path, StateReason(code="Client.InvalidSnapshot.Corrupted",
                                                              message=str(exc)))
            return
        except Exception as exc:  # Walrus unreachable, disk full, …: the volume says why
            log.exception("restoring %s from %s", volume_id, manifest.snapshot_id)
            self._fail_restore(volume_id, path, server_error(
                f"restoring from {manifest.snapshot_id} failed: {exc}"))
            return
        with self.db.session() as session:
            row = session.get(Volume, volume_id)
            if row is not None:
                move_volume(row, "available")

    def _fail_restore(self, volume_id: str, path: str, reason: StateReason) -> None:
        # Bad data never stays readable: the volume is emptied, the size is kept for the record.
        try:
            self.storage.discard(path)
        except Exception:
            log.exception("emptying %s", path)
        with self.db.session() as session:
            row = session.get(Volume, volume_id)
            if row is not None:
                move_volume(row, "error", reason)
        self.recorder.record("decided", f"{volume_id}: error: {reason.message}")

    def grow(self, volume_id: str, size_gib: int) -> VolumeInfo:
        check_volume_id(volume_id)
        with self.locks(volume_id), self._admit, self.db.session() as session:
            volume = self._get(session, volume_id)
            if volume.state not in ("available", "in-use"):
                raise incorrect_state(f"The volume '{volume_id}' is {volume.state}; only an "
                                      "available or in-use volume can be modified.")
            if size_gib <= volume.size_gib:
                raise bad_value(f"New size {size_gib}GiB must be larger than the volume's "
                                f"{volume.size_gib}GiB: volumes can only grow.")
            check_size(size_gib)
            provisioned = self.provisioned_gib(session)
            if provisioned - volume.size_gib + size_gib > self.capacity_gib:
                raise StorageFault(400, "VolumeLimitExceeded",
                                   f"Growing to {size_gib}GiB does not fit: {provisioned} of "
                                   f"{self.capacity_gib}GiB of this zone's storage are taken.")
            self.storage.grow(volume.path, size_gib * GIB)
            volume.size_gib = size_gib
            volume.updated_at = utcnow()
            # An nbd server reads the size once: serve the grown file again on the same port.
            for row in self._exports(session, volume_id):
                fresh = self.exporters[row.driver].restart(as_target(row))
                row.pid, row.host = fresh.pid, fresh.host
            return self._info(volume, len(self._exports(session, volume_id)))

    def delete(self, volume_id: str) -> VolumeInfo:
        check_volume_id(volume_id)
        with self.locks(volume_id), self.db.session() as session:
            volume = self._get(session, volume_id)
            if volume.state == "deleted":
                return volume_info(volume)
            if self._exports(session, volume_id):
                raise StorageFault(409, "VolumeInUse",
                                   f"Volume {volume_id} is currently attached.")
            if volume.state == "creating":
                raise incorrect_state(f"The volume '{volume_id}' is still being created.")
            move_volume(volume, "deleting")
            session.flush()
            self.storage.delete(volume.path)
            move_volume(volume, "deleted")
            self.recorder.record("decided", f"{volume_id}: deleted {volume.path}, "
                                 f"{volume.size_gib}GiB returned to the zone")
            return volume_info(volume)

    # --- exports ----------------------------------------------------------------------------

    def export(self, volume_id: str, node: str) -> VolumeExportInfo:
        check_volume_id(volume_id)
        if not node.strip():
            raise bad_value("The node of an export must be named.")
        with self.locks(volume_id), self.db.session() as session:
            volume = self._get(session, volume_id)
            rows = self._exports(session, volume_id)
            mine = next((r for r in rows if r.node == node), None)
            if mine is not None:
                driver = self.exporters[mine.driver]
                if not driver.alive(as_target(mine)):  # e.g. qemu-nbd was killed: serve again
                    fresh = driver.restart(as_target(mine))
                    mine.pid, mine.host = fresh.pid, fresh.host
                return export_info(mine)
            if rows:
                raise StorageFault(409, "VolumeInUse", f"Volume {volume_id} is already exported "
                                   f"to node {rows[0].node}.")
            if volume.state != "available":
                raise incorrect_state(f"The volume '{volume_id}' is {volume.state}, not available.")
            driver = self.exporters[self.driver]
            taken = [p for p in session.scalars(select(Export.port).where(Export.port.is_not(None)))]
            try:
                target = driver.export(volume_id, volume.path, taken=taken)
            except ExportFailed as exc:
                raise StorageFault(503, "ExportFailed",
                                   f"Exporting {volume_id} to {node} failed: {exc}") from exc
            try:
                row = Export(volume_id=volume_id, node=node, driver=target.driver, path=target.path,
                             host=target.host, port=target.port, export_name=target.export_name,
                             pid=target.pid, user=target.user, created_at=utcnow())
                session.add(row)
                move_volume(volume, "in-use")
                session.flush()
            except BaseException:
                driver.unexport(target)  # half an export is no export
                raise
            self.recorder.record("decided", f"{volume_id} -> {node}: {driver.why(target)}")
            return export_info(row)

    def unexport(self, volume_id: str, node: str) -> VolumeInfo:
        check_volume_id(volume_id)
        with self.locks(volume_id), self.db.session() as session:
            volume = self._get(session, volume_id)
            rows = self._exports(session, volume_id)
            for row in [r for r in rows if r.node == node]:
                self.exporters[row.driver].unexport(as_target(row))
                session.delete(row)
                rows.remove(row)
                self.recorder.record("decided", f"{volume_id}: export to {node} removed")
            if not rows and volume.state == "in-use":
                move_volume(volume, "available")
            return self._info(volume, len(rows))

    def exports(self, volume_id: str) -> VolumeExportList:
        with self.db.session() as session:
            self._get(session, volume_id)
            return VolumeExportList(exports=[export_info(r) for r in self._exports(session, volume_id)])

    # --- start and stop ---------------------------------------------------------------------

    def recover(self) -> None:
        """At start: end what a previous SC left running, serve its exports again on the same
        ports, and resume restores it did not finish."""
        with self.db.session() as session:
            for row in list(session.scalars(select(Export))):
                driver = self.exporters[row.driver]
                try:
                    fresh = driver.restart(as_target(row))
                    row.pid, row.host = fresh.pid, fresh.host
                except ExportFailed as exc:
                    log.error("export of %s to %s could not be served again: %s",
                              row.volume_id, row.node, exc)
                    session.delete(row)
                    session.flush()
                    volume = session.get(Volume, row.volume_id)
                    if volume is not None and not self._exports(session, volume.id) \
                            and volume.state == "in-use":
                        move_volume(volume, "available")
            creating = list(session.scalars(select(Volume).where(Volume.state == "creating")))
            for volume in creating:
                if volume.snapshot_id is None:
                    if self.storage.exists(volume.path):
                        move_volume(volume, "available")
                    else:
                        move_volume(volume, "error", server_error("the SC stopped while creating it"))
        for volume in creating:
            if volume.snapshot_id is not None:
                self._resume_restore(volume.id, volume.snapshot_id)

    def _resume_restore(self, volume_id: str, snapshot_id: str) -> None:
        try:
            manifest = self.snapshots.restorable(snapshot_id)
        except StorageFault as exc:
            with self.db.session() as session:
                row = session.get(Volume, volume_id)
                if row is not None:
                    move_volume(row, "error", StateReason(code=exc.error.code,
                                                           message=exc.error.message))
            return
        except Exception:  # Walrus not up yet: the next start tries again
            log.exception("resuming the restore of %s", volume_id)
            return
        self.jobs.submit(volume_id, lambda: self._restore(volume_id, manifest))

    def stop(self) -> None:
        for driver in self.exporters.values():
            driver.stop_all()
