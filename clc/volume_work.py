"""Volume work after the answer: the slow half of AttachVolume, DetachVolume and DeleteVolume,
one volume at a time.

`VolumeWork` runs it on one worker thread per zone (as clc/placement.py does for launches: a
hung SC or CC stalls only its own zone), never holding a database session across a call to
another service:

- attach: SC export to the instance's node -> CC AttachDisk -> attached. A failure after the
  export unexports it again (no export is left behind) and gives the volume back, available,
  with the reason;
- detach: CC DetachDisk -> SC unexport -> available (Force: the SC side is done even when the
  CC refuses);
- delete: SC delete -> deleted.

`disks_reported` (from the reconcile round's whole reports) takes a stray disk off the
instance a node put it on. The level-triggered pass that settles what the SCs report, and
queues its work here, is clc/volume_settler.py."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import select

from clc.models.instances import Instance
from clc.models.volumes import Volume
from clc.storage_client import StorageClient, StorageError
from clc.volumes import attach_state, move_attachment, state, transition
from clc.zone_queues import Job, ZoneQueues
from clc.zones_client import ZoneClient, ZoneError
from services.db import Database
from services.messages.attach import AttachDisk, DetachDisk, DiskSource
from services.messages.node import InstanceReport, StateReason
from services.messages.storage import VolumeExportInfo
from services.tracing import TraceRecorder, bind_request_id, unbind_request_id

LOG = logging.getLogger(__name__)


def attach_failed(message: str) -> StateReason:
    return StateReason(code="Server.AttachFailed", message=f"Server.AttachFailed: {message}")


class VolumeWork:
    def __init__(self, db: Database, storage: StorageClient, zones: ZoneClient | None,
                 recorder: TraceRecorder | None = None) -> None:
        self.db = db
        self.storage = storage
        self.zones = zones
        self.recorder = recorder
        self._queues = ZoneQueues("volumes")
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- what handlers ask for, after recording the wish ---------------------------------------

    def attach(self, zone: str, volume_id: str, request_id: str) -> None:
        self.once(zone, volume_id, request_id, self._attach)

    def detach(self, zone: str, volume_id: str, request_id: str) -> None:
        self.once(zone, volume_id, request_id, self._detach)

    def delete(self, zone: str, volume_id: str, request_id: str) -> None:
        self.once(zone, volume_id, request_id, self._delete)

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
                self.once(zone, f"{instance_id}/{volume_id}", "", self._take_off)

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
        self.note(f"{volume_id}: a stray disk on {instance_id} (the CLC has no such attachment); taken off")

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
        self.note(f"{volume_id} exported to {node}", uri=export.uri, driver=export.driver)
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
        self.note(f"{volume_id} attached to {instance_id} as {device}", target=attached.target)

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
        self.note(f"{volume_id} attached to stopped {instance_id}; in its domain from the next start")

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
        self.note(f"{volume_id}: attachment given up: {reason.message}")

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
        self.note(f"{volume_id} detached from {instance_id}")
        if doomed:
            self.note(f"{volume_id} deleted with {instance_id} (DeleteOnTermination)")
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
        self.note(f"{volume_id} deleted")

    # -- plumbing (clc/volume_settler.py queues its work through it too) ----------------------

    def once(self, zone: str, volume_id: str, request_id: str,
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
        self.submit(zone, job)

    def _with_request(self, request_id: str, job: Job) -> None:
        if not request_id:
            job()
            return
        token = bind_request_id(request_id)
        try:
            job()
        finally:
            unbind_request_id(token)

    def note(self, what: str, **detail: object) -> None:
        LOG.info("%s %s", what, detail or "")
        if self.recorder is not None:
            self.recorder.record("decided", what, **detail)

    def submit(self, zone: str, job: Job) -> None:
        self._queues.submit(zone, job)

    def stop(self, timeout: float = 5.0) -> None:
        self._queues.stop(timeout)


def source_of(export: VolumeExportInfo) -> DiskSource:
    return DiskSource(driver=export.driver, path=export.path, host=export.host, port=export.port,
                      export_name=export.export_name, user=export.user, uri=export.uri)
