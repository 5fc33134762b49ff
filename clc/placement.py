"""Launches after the answer: RunInstances admits against the CLC's view of the zone
(clc/zone_view.py), records the instances `pending` and answers; `Launches` then asks the
zone's CC to place them, off the request, on one worker thread per zone (two zones launch
independently, and a hung CC stalls only its own zone's queue).

A launch with EBS volumes (BlockDeviceMappings, an EBS-backed image, or a stopped instance
started again) first has them made ready on a thread of its own (clc/launch_volumes.py), then
joins the zone's queue with their sources in its RunInstances; once placed, their attachments
are `attached`. A start that cannot be carried out leaves the instance `stopped` with the
reason, as EC2 does; a launch that cannot, `terminated`.

When the CC answers, each instance gets its node and the launch's hold moves onto those nodes
until the zone's capacity view counts them. When the CC refuses (its view was newer than the
CLC's), the instances end `terminated` with a StateReason that says so — which also frees
their addresses, as only live instances hold addresses — and the hold is released."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from clc import launch_volumes, volumes
from clc.instances import InstanceState, insufficient_capacity, server_error, transition
from clc.launch_volumes import BootDisk, BootFailed
from clc.models.instances import Instance
from clc.models.volumes import Volume
from clc.storage_client import StorageClient
from clc.zone_queues import Job, ZoneQueues
from clc.zone_view import NoView, ZoneViews
from clc.network_sync import NetworkSync
from clc.zones_client import ZoneClient, ZoneError
from services.config import CloudConfig
from services.db import Database
from services.messages.cluster import RunInstances, RunInstancesResult, ZoneCapacity
from services.messages.node import StateReason, Subscription, VmType
from services.tracing import TraceRecorder, bind_request_id, unbind_request_id

LOG = logging.getLogger(__name__)



def subscription(config: CloudConfig, zone: str) -> Subscription:
    """Where the zone's CC pushes its ZoneEvents: this CLC, keyed by the zone's name."""
    return Subscription(url=config.service_url("clc"), key=zone)


@dataclass
class _Placing:
    """One RunInstances on its way to the zone's CC."""
    zone: str
    request: RunInstances
    request_id: str
    hold: str
    restart: bool = False


class Launches:
    def __init__(self, config: CloudConfig, db: Database, zones: ZoneClient,
                 recorder: TraceRecorder | None = None, network: NetworkSync | None = None,
                 storage: StorageClient | None = None) -> None:
        self.config = config
        self.storage = storage
        self.network = network
        self.db = db
        self.zones = zones
        self.views = ZoneViews(config.zones)
        self.recorder = recorder
        self._queues = ZoneQueues("launches")

    # -- admission (on the request) ------------------------------------------------------------

    def admit(self, zone: str, reservation_id: str, vm: VmType, min_count: int, max_count: int) -> int:
        """How many instances of the launch to start; they are held in the zone's view."""
        view = self.views[zone]
        try:
            return view.admit(reservation_id, vm, min_count, max_count)
        except NoView:
            # A fresh CLC: ask the zone once (this also subscribes it to push from now on).
            report = self.zones.describe(zone, subscription(self.config, zone))
            view.arrived(report.capacity, whole_report=True)
            return view.admit(reservation_id, vm, min_count, max_count)

    def capacity(self, zone: str) -> ZoneCapacity:
        """The zone's capacity as admission sees it (asking the zone once, as admit does, when
        this CLC has no view yet)."""
        view = self.views[zone]
        current = view.capacity
        if current is None:
            report = self.zones.describe(zone, subscription(self.config, zone))
            view.arrived(report.capacity, whole_report=True)
            current = view.capacity
        assert current is not None
        return current

    def release(self, zone: str, reservation_id: str) -> None:
        self.views[zone].release(reservation_id)

    def capacity_arrived(self, zone: str, capacity: ZoneCapacity, *, whole_report: bool) -> bool:
        return self.views[zone].arrived(capacity, whole_report=whole_report)

    # -- after the answer (on the zone's worker) -----------------------------------------------

    def place(self, zone: str, request: RunInstances, request_id: str, *,
              disks: list[BootDisk] | None = None, hold: str | None = None,
              restart: bool = False) -> None:
        """Ask the zone's CC to place the recorded launch, right after the answer. `disks`:
        EBS volumes to make ready first; `hold`: the key the admission held capacity under
        (the reservation's by default); `restart`: a StartInstances, whose failure leaves
        the instances stopped."""
        job = _Placing(zone, request, request_id, hold or request.reservation_id, restart)
        if not disks:
            self._submit(zone, lambda: self._place(job))
            return
        threading.Thread(target=self._prepare_volumes, args=(job, disks), daemon=True,
                         name=f"clc-boot-volumes-{request.reservation_id}").start()

    def _prepare_volumes(self, job: _Placing, disks: list[BootDisk]) -> None:
        token = bind_request_id(job.request_id)
        try:
            if self.storage is None:
                raise BootFailed("this cloud has no storage controller")
            if self._all_ended(job):   # terminated before anything was made: nothing to make
                self.release(job.zone, job.hold)
                launch_volumes.abandon(self.db, self.storage, job.zone, disks)
                return
            ready = launch_volumes.prepare(
                self.db, self.storage, job.zone, disks, self.config.INSTANCE_PENDING_TIMEOUT,
                lambda what: self._note(job.request_id, what))
        except BootFailed as exc:
            self.release(job.zone, job.hold)
            if self.storage is not None:
                launch_volumes.abandon(self.db, self.storage, job.zone, disks)
            self._ended(job, server_error(f"the instance's EBS volumes: {exc}"))
            return
        except BaseException:
            self.release(job.zone, job.hold)
            raise
        finally:
            unbind_request_id(token)
        job.request = job.request.model_copy(update={"instances": [
            launch.model_copy(update={"volumes": ready.get(launch.instance_id, [])})
            for launch in job.request.instances]})
        self._submit(job.zone, lambda: self._place(job))

    def terminate_on_zone(self, zone: str, instance_id: str) -> None:
        self._submit(zone, lambda: self._terminate(zone, instance_id))

    def _place(self, job: _Placing) -> None:
        zone, request, request_id = job.zone, job.request, job.request_id
        token = bind_request_id(request_id)
        try:
            result = self.zones.run_instances(zone, request)
        except ZoneError as refusal:
            self.release(zone, job.hold)
            self._refused(job, refusal)
            return
        except BaseException:
            self.release(zone, job.hold)
            raise
        finally:
            unbind_request_id(token)
        self._placed(job, result)

    def _placed(self, job: _Placing, result: RunInstancesResult) -> None:
        zone, request, request_id = job.zone, job.request, job.request_id
        started = Counter(p.node for p in result.placed if p.report is not None)
        self.views[zone].placed(job.hold, dict(started), result.capacity_version)
        placements = {p.instance_id: p for p in result.placed}
        cut = insufficient_capacity(f"zone {zone} had room for {len(result.placed)} of the "
                                    f"{len(request.instances)} instances admitted")
        unwanted: list[str] = []
        # Nodes that refused after the CC placed them may leave fewer than MinCount started:
        # then the launch fails as a whole, as EC2's does — the started ones are ended too.
        short = not job.restart and sum(started.values()) < request.min_count
        refusals = "; ".join(p.reason.message for p in result.placed if p.report is None and p.reason)
        rolled_back = insufficient_capacity(
            f"only {sum(started.values())} of the MinCount {request.min_count} instances of "
            f"{request.reservation_id} started ({refusals or 'nodes refused'}); the launch is "
            "rolled back")
        with self.db.session() as session:
            for row in self._rows(session, request):
                placement = placements.get(row.id)
                if placement is None:          # beyond what fit when the CC placed them
                    self._end(session, row, cut, job.restart)
                    continue
                row.node = row.node or placement.node
                if placement.report is None:   # the node refused it
                    self._end(session, row, placement.reason or server_error(
                        f"node {placement.node} did not start the instance"), job.restart)
                    continue
                if short:
                    self._end(session, row, rolled_back, restart=False)
                    row.desired_state = "terminated"
                    unwanted.append(row.id)
                    continue
                self._attached(session, row.id)
                if row.desired_state == "terminated":  # the user ended it meanwhile
                    unwanted.append(row.id)
                elif row.state == "pending" and placement.report.reason is not None:
                    transition(row, "pending", placement.report.reason)
        for instance_id in unwanted:
            self._terminate(zone, instance_id)
        if self.network is not None:  # the instances now have nodes: the plan places them
            self.network.changed(zone, request_id)
        self._note(request_id, f"zone {zone} started {sum(started.values())} instance(s) of "
                   f"{request.reservation_id}", nodes=sorted(started))

    def _refused(self, job: _Placing, refusal: ZoneError) -> None:
        if refusal.code == "InsufficientInstanceCapacity":
            reason = insufficient_capacity(refusal.message)
        else:
            reason = server_error(f"zone {job.zone} could not start the instance: "
                                  f"{refusal.code}: {refusal.message}")
        self._ended(job, reason)

    def _ended(self, job: _Placing, reason: StateReason) -> None:
        """None of the launch started: its instances end (or, for a start, stop again)."""
        with self.db.session() as session:
            for row in self._rows(session, job.request):
                self._end(session, row, reason, job.restart)
        self._note(job.request_id, f"zone {job.zone} did not start {job.request.reservation_id}: "
                   f"{reason.message}")

    @staticmethod
    def _end(session, row: Instance, reason: StateReason, restart: bool) -> None:  # type: ignore[no-untyped-def]
        """A launch that did not start ends terminated; a start of a stopped instance goes
        back to stopped, its volumes kept attached (as EC2 answers a start without room)."""
        target: InstanceState = "stopped" if restart and row.desired_state != "terminated" else "terminated"
        if row.state == target:
            return
        transition(row, target, reason)
        if target == "stopped":
            row.node = None
            row.desired_state = "stopped"

    def _all_ended(self, job: _Placing) -> bool:
        with self.db.session() as session:
            return all(row.desired_state == "terminated" for row in self._rows(session, job.request))

    @staticmethod
    def _attached(session, instance_id: str) -> None:  # type: ignore[no-untyped-def]
        """The NC defined the domain with its boot volumes: their attachments are made."""
        for volume in session.scalars(select(Volume).where(Volume.instance_id == instance_id,
                                                           Volume.attach_state == "attaching",
                                                           Volume.attach_node == instance_id)):
            volumes.move_attachment(volume, "attached")

    def _terminate(self, zone: str, instance_id: str) -> None:
        try:
            self.zones.terminate(zone, instance_id)
        except ZoneError as exc:
            LOG.info("terminate %s on zone %s: %s (the reconcile round retries)", instance_id, zone, exc)

    @staticmethod
    def _rows(session, request: RunInstances) -> list[Instance]:  # type: ignore[no-untyped-def]
        """The launch's instances, terminated ones too (a final state never moves; the user
        may have ended one before the CC placed it, and the zone must end it too)."""
        ids = [launch.instance_id for launch in request.instances]
        return list(session.scalars(select(Instance).where(Instance.id.in_(ids))))

    def _note(self, request_id: str, what: str, **detail: object) -> None:
        LOG.info("%s %s", what, detail or "")
        if self.recorder is not None:
            self.recorder.record("decided", what, request_id=request_id, **detail)

    # -- the workers ---------------------------------------------------------------------------

    def _submit(self, zone: str, job: Job) -> None:
        self._queues.submit(zone, job)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs (a CC that hangs is left to its timeout) and end the workers."""
        self._queues.stop(timeout)
