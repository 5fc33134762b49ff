"""Volume work after the answer, and the pass that settles what the SCs report.

`VolumeWork` runs the slow half of AttachVolume, DetachVolume and DeleteVolume on one worker
thread per zone (as clc/placement.py does for launches: a hung SC or CC stalls only its own
zone), never holding a database session across a call to another service:

- attach: SC export to the instance's node -> CC AttachDisk -> attached. A failure after the
  export unexports it again (no export is left behind) and gives the volume back, available,
  with the reason;
- detach: CC DetachDisk -> SC unexport -> available (Force: the SC side is done even when the
  CC refuses);
- delete: SC delete -> deleted.

`settle_once` (every NC_POLLING_FREQUENCY or every second, whichever is sooner, and right
after a CreateVolume) is the level-triggered safety net: a `creating` volume takes the SC's
state, a `deleting` one is deleted again, a pending snapshot takes the SC's progress, an
attach or detach whose job was lost runs again, and a volume attached to an instance that has
ended is unexported and given back `available`, its data kept. `disks_reported` (from the
reconcile round's whole reports) takes a stray disk off the instance a node put it on."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from clc import snapshots as snapshot_rules
from clc.models.instances import Instance
from clc.models.volumes import Snapshot, Volume
from clc.storage_client import StorageClient, StorageError
from clc.volumes import attach_state, move_attachment, state, transition
from clc.zone_queues import Job, ZoneQueues
from clc.zones_client import ZoneClient, ZoneError
from services.clock import KEEP_TERMINATED, aware, utcnow
from services.config import CloudConfig
from services.db import Database
from services.messages.attach import AttachDisk, DetachDisk, DiskSource
from services.messages.node import InstanceReport, StateReason
from services.messages.storage import VolumeExportInfo, VolumeInfo
from services.tracing import TraceRecorder, bind_request_id, unbind_request_id

LOG = logging.getLogger(__name__)

# A volume the SC does not know this long after the CLC recorded it never reached the SC.
UNKNOWN_GRACE = timedelta(minutes=2)
STUCK_AFTER = timedelta(seconds=30)
# A volume or snapshot the SC holds that the CLC neither records nor is asking for (see
# `unrecorded`) is a CreateVolume or CreateSnapshot whose CLC died, or whose SC died, between
# the SC making it and the CLC committing it: nobody was answered, and it is deleted.
STRAYS_EVERY = timedelta(seconds=3)


def attach_failed(message: str) -> StateReason:
    return StateReason(code="Server.AttachFailed", message=f"Server.AttachFailed: {message}")


class VolumeWork:
    def __init__(self, config: CloudConfig, db: Database, storage: StorageClient,
                 zones: ZoneClient | None, recorder: TraceRecorder | None = None) -> None:
        self.config = config
        self.db = db
        self.storage = storage
        self.zones = zones
        self.recorder = recorder
        # A snapshot's progress is what `eucasim snapshot wait` draws, so the pass looks at
        # least every second; a round with nothing creating, deleting or pending is a few reads.
        self.interval = min(config.NC_POLLING_FREQUENCY, 1.0)
        self._queues = ZoneQueues("volumes")
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.started = utcnow()
        self._strays_swept: datetime | None = None
        self._making: set[str] = set()   # ids asked of an SC and not yet committed or given up

    # -- what handlers ask for, after recording the wish ---------------------------------------

    def attach(self, zone: str, volume_id: str, request_id: str) -> None:
        self._once(zone, volume_id, request_id, self._attach)

    def detach(self, zone: str, volume_id: str, request_id: str) -> None:
        self._once(zone, volume_id, request_id, self._detach)

    def delete(self, zone: str, volume_id: str, request_id: str) -> None:
        self._once(zone, volume_id, request_id, self._delete)

    def settle(self, zone: str, volume_id: str) -> None:
        self._submit(zone, lambda: self._settle_volume(volume_id))

    def disks_reported(self, zone: str, instances: Sequence[InstanceReport]) -> None:
        """What the zone's nodes report attached, against what the CLC recorded: a disk on an
        instance the volume is not attached (or being attached or detached) to is a stray — an
        attach the node carried out after the CLC had given it up (its CC timed out on a
        stalled node), or a detach the node never heard of — and is taken off again, forced."""
        reported = [(i.instance_id, a.volume_id) for i in instances for a in i.volumes]
        if not reported:
            return
        with self.db.session() as session:
            recorded = {v.id: v.instance_id for v in session.scalars(select(Volume).where(
                Volume.id.in_({volume_id for _, volume_id in reported}),
                Volume.attach_state.is_not(None)))}
        for instance_id, volume_id in reported:
            if recorded.get(volume_id) != instance_id:
                self._once(zone, f"{instance_id}/{volume_id}", "", self._take_off)

    def _take_off(self, stray: str) -> None:
        instance_id, volume_id = stray.split("/", 1)
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and volume.attach_state is not None and volume.instance_id == instance_id:
                return  # attached there again meanwhile: not a stray any more
            instance = session.get(Instance, instance_id)
            zone = instance.zone if instance is not None else None
        if zone is None or self.zones is None:
            return
        try:
            self.zones.detach_disk(zone, instance_id, volume_id, DetachDisk(force=True))
        except ZoneError as exc:
            LOG.warning("take the stray %s off %s: %s (the next round retries)", volume_id, instance_id, exc)
            return
        self._note(f"{volume_id}: a stray disk on {instance_id} (the CLC has no such attachment); taken off")

    # -- attach / detach / delete (on the zone's worker) ---------------------------------------

    def _attach(self, volume_id: str) -> None:
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or attach_state(volume) != "attaching":
                return  # detached meanwhile
            if volume.attach_node is not None and volume.attach_node == volume.instance_id:
                return  # a volume the instance boots with: its launch attaches it (clc/placement.py)
            instance = session.get(Instance, volume.instance_id)
            zone, device = volume.zone, volume.device or ""
            instance_id = volume.instance_id or ""
            node = instance.node if instance is not None else None
            live = instance is not None and instance.state in ("pending", "running")
            stopped = instance is not None and instance.state == "stopped"
        if stopped:
            self._attach_stopped(zone, volume_id, instance_id)
            return
        if not live or node is None:
            self._give_up(volume_id, None, attach_failed(
                f"instance {instance_id} is not running on a node"))
            return
        try:
            export = self.storage.export(zone, volume_id, node)
        except StorageError as exc:
            self._give_up(volume_id, None, attach_failed(
                f"the storage controller could not export {volume_id} to {node}: "
                f"{exc.code}: {exc.message}"))
            return
        self._note(f"{volume_id} exported to {node}", uri=export.uri, driver=export.driver)
        try:
            assert self.zones is not None
            attached = self.zones.attach_disk(zone, instance_id, AttachDisk(
                volume_id=volume_id, device=device, source=source_of(export)))
        except (ZoneError, AssertionError) as exc:
            reason = f"{exc.code}: {exc.message}" if isinstance(exc, ZoneError) else "no zone seam"
            self._give_up(volume_id, node, attach_failed(
                f"zone {zone} could not attach {volume_id} to {instance_id}: {reason}"))
            return
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            done = volume is not None and attach_state(volume) == "attaching"
            if volume is not None and volume.attach_state is not None:
                volume.attach_node = node  # so a detach asked meanwhile unexports it
            if done:
                move_attachment(volume, "attached")  # type: ignore[arg-type]
        if not done:  # detached while the CC attached it: take it off again
            self._undo(zone, instance_id, volume_id, node)
            return
        self._note(f"{volume_id} attached to {instance_id} as {device}", target=attached.target)

    def _attach_stopped(self, zone: str, volume_id: str, instance_id: str) -> None:
        """A stopped instance has no domain: the volume is exported for the instance (as its
        boot volumes are, clc/launch_volumes.py) and joins its domain at the next start."""
        try:
            self.storage.export(zone, volume_id, instance_id)
        except StorageError as exc:
            self._give_up(volume_id, None, attach_failed(
                f"the storage controller could not export {volume_id}: {exc.code}: {exc.message}"))
            return
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and attach_state(volume) == "attaching":
                volume.attach_node = instance_id
                move_attachment(volume, "attached")
        self._note(f"{volume_id} attached to stopped {instance_id}; in its domain from the next start")

    def _undo(self, zone: str, instance_id: str, volume_id: str, node: str) -> None:
        """The user detached while the attach was under way: the CC and SC halves go again."""
        try:
            assert self.zones is not None
            self.zones.detach_disk(zone, instance_id, volume_id, DetachDisk(force=True))
            self.storage.unexport(zone, volume_id, node)
        except (ZoneError, StorageError) as exc:
            LOG.warning("undo the attach of %s to %s: %s", volume_id, instance_id, exc)
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and volume.attach_state is not None and \
                    volume.instance_id == instance_id:
                move_attachment(volume, "detached")

    def _give_up(self, volume_id: str, exported_to: str | None, reason: StateReason) -> None:
        """Undo a half-made attachment: no export left, the volume available with the reason."""
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            zone = volume.zone if volume is not None else None
        if exported_to is not None and zone is not None:
            try:
                self.storage.unexport(zone, volume_id, exported_to)
            except StorageError as exc:  # the settle pass unexports a free volume's leftovers
                LOG.warning("unexport %s from %s: %s", volume_id, exported_to, exc)
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and volume.attach_state is not None:
                move_attachment(volume, "detached", reason)
        self._note(f"{volume_id}: attachment given up: {reason.message}")

    def _detach(self, volume_id: str) -> None:
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or volume.attach_state is None:
                return
            zone, instance_id = volume.zone, volume.instance_id or ""
            node, force = volume.attach_node, volume.force_detach
            instance = session.get(Instance, instance_id)
            gone = instance is None or instance.state == "terminated"
            # A stopped instance has no domain to take the disk out of.
            no_domain = gone or instance.state == "stopped"  # type: ignore[union-attr]
        if not no_domain and node is not None and self.zones is not None:
            try:
                self.zones.detach_disk(zone, instance_id, volume_id, DetachDisk(force=force))
            except ZoneError as exc:
                if not force:
                    LOG.warning("detach %s from %s: %s (the settle pass retries)", volume_id,
                                instance_id, exc)
                    return
        if node is not None:
            try:
                self.storage.unexport(zone, volume_id, node)
            except StorageError as exc:
                LOG.warning("unexport %s from %s: %s (the settle pass retries)", volume_id, node, exc)
                return
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and volume.attach_state is not None:
                move_attachment(volume, "detached")
            # The instance ended: a volume marked DeleteOnTermination goes with it.
            doomed = gone and volume is not None and volume.delete_on_termination \
                and state(volume) == "available"
            if doomed:
                transition(volume, "deleting")  # type: ignore[arg-type]
            elif volume is not None:
                volume.delete_on_termination = False  # the next AttachVolume decides anew
        self._note(f"{volume_id} detached from {instance_id}")
        if doomed:
            self._note(f"{volume_id} deleted with {instance_id} (DeleteOnTermination)")
            self.delete(zone, volume_id, "")

    def _delete(self, volume_id: str) -> None:
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or state(volume) != "deleting":
                return
            zone = volume.zone
        try:
            self.storage.delete_volume(zone, volume_id)
        except StorageError as exc:
            LOG.warning("delete %s: %s (the settle pass retries)", volume_id, exc)
            return
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and state(volume) == "deleting":
                transition(volume, "deleted")
        self._note(f"{volume_id} deleted")

    # -- settling what the SC reports ----------------------------------------------------------

    def _settle_volume(self, volume_id: str) -> None:
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or state(volume) != "creating":
                return
            zone, created = volume.zone, aware(volume.created_at) or utcnow()
        try:
            info = self.storage.volume(zone, volume_id)
        except StorageError as exc:
            LOG.info("settle %s: %s", volume_id, exc)
            return
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is not None and state(volume) == "creating":
                settle_created(volume, info, created)

    def settle_once(self) -> None:
        with self.db.session() as session:
            creating = list(session.scalars(select(Volume.id).where(Volume.state == "creating")))
            deleting = [(v.zone, v.id) for v in session.scalars(
                select(Volume).where(Volume.state == "deleting"))]
            ended = [(v.zone, v.id) for v in session.scalars(
                select(Volume).join(Instance, Instance.id == Volume.instance_id, isouter=True)
                .where(Volume.instance_id.is_not(None),
                       (Instance.id.is_(None)) | (Instance.state == "terminated")))]
            # An attach or detach whose job was lost (a restart) is carried out again: at once
            # when no request of this CLC has touched it (its job died with the last one).
            stale = max(self.started, utcnow() - STUCK_AFTER)
            stuck = [(v.zone, v.id, v.attach_state) for v in session.scalars(select(Volume).where(
                Volume.attach_state.in_(("attaching", "detaching")), Volume.updated_at < stale))]
            pending = [(s.zone, s.id, s.data_id) for s in session.scalars(
                select(Snapshot).where(Snapshot.state == "pending"))]
        self._purge()
        now = utcnow()
        if self._strays_swept is None or now - self._strays_swept >= STRAYS_EVERY:
            self._strays_swept = now
            self._sweep_strays()
        for volume_id in creating:
            self._settle_volume(volume_id)
        # On the zones' workers, in line with the handlers' jobs for the same volumes.
        for zone, volume_id in deleting:
            self.delete(zone, volume_id, "")
        for zone, volume_id in ended:  # the instance ended: the volume outlives it
            self.detach(zone, volume_id, "")
        for zone, volume_id, moving in stuck:
            (self.attach if moving == "attaching" else self.detach)(zone, volume_id, "")
        for zone, snapshot_id, data_id in pending:
            try:
                info = self.storage.snapshot(zone, data_id)
            except StorageError as exc:
                LOG.info("settle %s: %s", snapshot_id, exc)
                continue
            with self.db.session() as session:
                row = session.get(Snapshot, snapshot_id)
                if row is not None and row.state == "pending":
                    snapshot_rules.settle(row, info)

    def unrecorded(self, session: Session, item_id: str) -> None:
        """A request is about to ask an SC to make `item_id` (a volume or a snapshot) and
        record it in `session`: the stray sweep leaves it alone until that session commits
        or rolls back."""
        with self._lock:
            self._making.add(item_id)

        def done(_session: Session) -> None:
            with self._lock:
                self._making.discard(item_id)
        event.listen(session, "after_commit", done, once=True)
        event.listen(session, "after_rollback", done, once=True)

    def _sweep_strays(self) -> None:
        """Delete on each zone's SC what the CLC neither records nor is asking for."""
        for zone in self.config.zones:
            try:
                listed = [v for v in self.storage.volumes(zone).volumes if v.state != "deleted"]
                sc_volumes = [v.volume_id for v in listed]
                sc_snapshots = [s.snapshot_id for s in self.storage.snapshots(zone).snapshots
                                if s.state != "deleted"]
            except StorageError as exc:
                LOG.info("strays of zone %s: %s", zone, exc)
                continue
            # In this order: an id leaves `_making` only once its row is committed, so one
            # not in `_making` now is either in the database below or never will be.
            with self._lock:
                making = set(self._making)
            exported = [v.volume_id for v in listed if v.exports]
            with self.db.session() as session:
                known = set(session.scalars(select(Volume.id).where(Volume.id.in_(sc_volumes))))
                known |= set(session.scalars(select(Snapshot.data_id).where(
                    Snapshot.data_id.in_(sc_snapshots))))
                free = list(session.scalars(select(Volume.id).where(
                    Volume.id.in_(exported), Volume.attach_state.is_(None),
                    Volume.state == "available")))
            # An export the CLC does not know of: an attach that failed while the SC was
            # down (the export was made, its answer lost) leaves one on a free volume.
            for volume_id in free:
                self._once(zone, volume_id, "", self._drop_leftover_exports)
            strays = [("volume", v, self.storage.delete_volume) for v in sc_volumes
                      if v not in known and v not in making]
            strays += [("snapshot", s, self.storage.delete_snapshot) for s in sc_snapshots
                       if s not in known and s not in making]
            for kind, item_id, remove in strays:
                try:
                    remove(zone, item_id)
                except StorageError as exc:
                    LOG.info("stray %s %s on zone %s: %s", kind, item_id, zone, exc)
                    continue
                LOG.warning("deleted stray %s %s on zone %s: the CLC never recorded it", kind,
                            item_id, zone)

    def _drop_leftover_exports(self, volume_id: str) -> None:
        """On the zone's worker, in line with its attach jobs: a volume still free (no
        attachment under way) loses every export its SC still serves."""
        with self.db.session() as session:
            volume = session.get(Volume, volume_id)
            if volume is None or volume.attach_state is not None or state(volume) != "available":
                return
            zone = volume.zone
        try:
            listed = self.storage.exports(zone, volume_id)
            for export in listed.exports if listed is not None else []:
                with self.db.session() as session:  # an attach asked meanwhile keeps its export
                    volume = session.get(Volume, volume_id)
                    if volume is None or volume.attach_state is not None:
                        return
                self.storage.unexport(zone, volume_id, export.node)
                self._note(f"{volume_id}: leftover export to {export.node} removed")
        except StorageError as exc:
            LOG.info("leftover exports of %s: %s (the next sweep retries)", volume_id, exc)

    def _purge(self) -> None:
        """Deleted volumes are forgotten after the hour EC2 keeps ended resources."""
        with self.db.session() as session:
            session.execute(delete(Volume).where(
                Volume.state == "deleted", Volume.updated_at < utcnow() - KEEP_TERMINATED))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.settle_once)
            except Exception:  # noqa: BLE001 - one bad round must not end the loop; it is logged
                LOG.exception("volume settle round failed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    # -- plumbing ------------------------------------------------------------------------------

    def _once(self, zone: str, volume_id: str, request_id: str,
              step: Callable[[str], None]) -> None:
        """Queue `step` for the volume unless the same step is queued already (the settle pass
        asks again every round while an attach or detach is still under way)."""
        key = (step.__name__, volume_id)
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)

        def job() -> None:
            with self._lock:
                self._queued.discard(key)
            self._with_request(request_id, lambda: step(volume_id))
        self._submit(zone, job)

    def _with_request(self, request_id: str, job: Job) -> None:
        if not request_id:
            job()
            return
        token = bind_request_id(request_id)
        try:
            job()
        finally:
            unbind_request_id(token)

    def _note(self, what: str, **detail: object) -> None:
        LOG.info("%s %s", what, detail or "")
        if self.recorder is not None:
            self.recorder.record("decided", what, **detail)

    def _submit(self, zone: str, job: Job) -> None:
        self._queues.submit(zone, job)

    def stop(self, timeout: float = 5.0) -> None:
        self._queues.stop(timeout)


def source_of(export: VolumeExportInfo) -> DiskSource:
    return DiskSource(driver=export.driver, path=export.path, host=export.host, port=export.port,
                      export_name=export.export_name, user=export.user, uri=export.uri)


def settle_created(volume: Volume, info: VolumeInfo | None, created: datetime) -> None:
    """A creating volume takes what its SC reports."""
    if info is None:
        if created < utcnow() - UNKNOWN_GRACE:
            transition(volume, "error", StateReason(
                code="Server.InternalError",
                message=f"the storage controller of zone {volume.zone} has no volume {volume.id}"))
        return
    if info.state == "available":
        transition(volume, "available")
    elif info.state == "error":
        transition(volume, "error", info.reason or StateReason(
            code="Server.InternalError", message="the storage controller could not create it"))
