"""The level-triggered safety net under the volume work: what the SCs report, settled against
what the CLC records.

`VolumeSettler.settle_once` runs every NC_POLLING_FREQUENCY or every second, whichever is
sooner (and `settle` right after a CreateVolume): a `creating` volume takes the SC's state, a
`deleting` one is deleted again, a pending snapshot takes the SC's progress, an attach or
detach whose job was lost runs again, and a volume attached to an instance that has ended is
unexported and given back `available`, its data kept. Every STRAYS_EVERY it also sweeps each
zone's SC: what the CLC neither records nor is making (`unrecorded`) is deleted, and a free
volume's leftover exports are dropped. Work on a volume goes to `VolumeWork`'s zone workers,
in line with the handlers' jobs for the same volume."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from clc import snapshots as snapshot_rules
from clc.models.instances import Instance
from clc.models.volumes import Snapshot, Volume
from clc.storage_client import StorageClient, StorageError
from clc.volume_work import VolumeWork
from clc.volumes import state, transition
from services.clock import KEEP_TERMINATED, aware, utcnow
from services.config import CloudConfig
from services.db import Database
from services.messages.node import StateReason
from services.messages.storage import VolumeInfo
from services.rounds import in_rounds

LOG = logging.getLogger(__name__)

# A volume the SC does not know this long after the CLC recorded it never reached the SC.
UNKNOWN_GRACE = timedelta(minutes=2)
STUCK_AFTER = timedelta(seconds=30)
# A volume or snapshot the SC holds that the CLC neither records nor is asking for (see
# `unrecorded`) is a CreateVolume or CreateSnapshot whose CLC died, or whose SC died, between
# the SC making it and the CLC committing it: nobody was answered, and it is deleted.
STRAYS_EVERY = timedelta(seconds=3)


class VolumeSettler:
    def __init__(self, config: CloudConfig, db: Database, storage: StorageClient,
                 work: VolumeWork) -> None:
        self.config = config
        self.db = db
        self.storage = storage
        self.work = work
        # A snapshot's progress is what `eucasim snapshot wait` draws, so the pass looks at
        # least every second; a round with nothing creating, deleting or pending is a few reads.
        self.interval = min(config.NC_POLLING_FREQUENCY, 1.0)
        self.started = utcnow()
        self._lock = threading.Lock()
        self._strays_swept: datetime | None = None
        self._making: set[str] = set()   # ids asked of an SC and not yet committed or given up

    def settle(self, zone: str, volume_id: str) -> None:
        """A volume was just recorded `creating`: take the SC's state on the zone's worker."""
        self.work.submit(zone, lambda: self._settle_volume(volume_id))

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

    async def run(self, stop: asyncio.Event) -> None:
        await in_rounds(stop, self.settle_once, self.interval, "volume settle round", LOG)

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
            self.work.delete(zone, volume_id, "")
        for zone, volume_id in ended:  # the instance ended: the volume outlives it
            self.work.detach(zone, volume_id, "")
        for zone, volume_id, moving in stuck:
            (self.work.attach if moving == "attaching" else self.work.detach)(zone, volume_id, "")
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
                self.work.once(zone, volume_id, "", self._drop_leftover_exports)
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
                self.work.note(f"{volume_id}: leftover export to {export.node} removed")
        except StorageError as exc:
            LOG.info("leftover exports of %s: %s (the next sweep retries)", volume_id, exc)

    def _purge(self) -> None:
        """Deleted volumes are forgotten after the hour EC2 keeps ended resources."""
        with self.db.session() as session:
            session.execute(delete(Volume).where(
                Volume.state == "deleted", Volume.updated_at < utcnow() - KEEP_TERMINATED))


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
