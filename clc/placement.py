"""Launches after the answer: RunInstances admits against the CLC's view of the zone
(clc/zone_view.py), records the instances `pending` and answers; `Launches` then asks the
zone's CC to place them, off the request, on one worker thread per zone (two zones launch
independently, and a hung CC stalls only its own zone's queue).

When the CC answers, each instance gets its node and the launch's hold moves onto those nodes
until the zone's capacity view counts them. When the CC refuses (its view was newer than the
CLC's), the instances end `terminated` with a StateReason that says so — which also frees
their addresses, as only live instances hold addresses — and the hold is released."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from clc.instances import insufficient_capacity, server_error, transition
from clc.models.instances import Instance
from clc.zone_view import NoView, ZoneViews
from clc.network_sync import NetworkSync
from clc.zones_client import ZoneClient, ZoneError
from services.config import CloudConfig
from services.db import Database
from services.messages.cluster import RunInstances, RunInstancesResult, ZoneCapacity
from services.messages.node import Subscription, VmType
from services.tracing import TraceRecorder, bind_request_id, unbind_request_id

LOG = logging.getLogger(__name__)

Job = Callable[[], None]


def subscription(config: CloudConfig, zone: str) -> Subscription:
    """Where the zone's CC pushes its ZoneEvents: this CLC, keyed by the zone's name."""
    return Subscription(url=config.service_url("clc"), key=zone)


@dataclass
class _Worker:
    jobs: queue.Queue[Job | None]
    thread: threading.Thread


class Launches:
    def __init__(self, config: CloudConfig, db: Database, zones: ZoneClient,
                 recorder: TraceRecorder | None = None, network: NetworkSync | None = None) -> None:
        self.config = config
        self.network = network
        self.db = db
        self.zones = zones
        self.views = ZoneViews(config.zones)
        self.recorder = recorder
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()

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

    def place(self, zone: str, request: RunInstances, request_id: str) -> None:
        """Ask the zone's CC to place the recorded launch, right after the answer."""
        self._submit(zone, lambda: self._place(zone, request, request_id))

    def terminate_on_zone(self, zone: str, instance_id: str) -> None:
        self._submit(zone, lambda: self._terminate(zone, instance_id))

    def _place(self, zone: str, request: RunInstances, request_id: str) -> None:
        token = bind_request_id(request_id)
        try:
            result = self.zones.run_instances(zone, request)
        except ZoneError as refusal:
            self.release(zone, request.reservation_id)
            self._refused(zone, request, refusal, request_id)
            return
        except BaseException:
            self.release(zone, request.reservation_id)
            raise
        finally:
            unbind_request_id(token)
        self._placed(zone, request, result, request_id)

    def _placed(self, zone: str, request: RunInstances, result: RunInstancesResult,
                request_id: str) -> None:
        started = Counter(p.node for p in result.placed if p.report is not None)
        self.views[zone].placed(request.reservation_id, dict(started), result.capacity_version)
        placements = {p.instance_id: p for p in result.placed}
        cut = insufficient_capacity(f"zone {zone} had room for {len(result.placed)} of the "
                                    f"{len(request.instances)} instances admitted")
        unwanted: list[str] = []
        with self.db.session() as session:
            for row in self._rows(session, request):
                placement = placements.get(row.id)
                if placement is None:          # beyond what fit when the CC placed them
                    transition(row, "terminated", cut)
                    continue
                row.node = row.node or placement.node
                if placement.report is None:   # the node refused it
                    transition(row, "terminated", placement.reason or server_error(
                        f"node {placement.node} did not start the instance"))
                elif row.desired_state == "terminated":  # the user ended it meanwhile
                    unwanted.append(row.id)
                elif row.state == "pending" and placement.report.reason is not None:
                    transition(row, "pending", placement.report.reason)
        for instance_id in unwanted:
            self._terminate(zone, instance_id)
        if self.network is not None:  # the instances now have nodes: the plan places them
            self.network.changed(zone, request_id)
        self._note(request_id, f"zone {zone} started {sum(started.values())} instance(s) of "
                   f"{request.reservation_id}", nodes=sorted(started))

    def _refused(self, zone: str, request: RunInstances, refusal: ZoneError, request_id: str) -> None:
        if refusal.code == "InsufficientInstanceCapacity":
            reason = insufficient_capacity(refusal.message)
        else:
            reason = server_error(f"zone {zone} could not start the instance: "
                                  f"{refusal.code}: {refusal.message}")
        with self.db.session() as session:
            for row in self._rows(session, request):
                transition(row, "terminated", reason)
        self._note(request_id, f"zone {zone} refused {request.reservation_id}: {reason.message}")

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
        with self._lock:
            worker = self._workers.get(zone)
            if worker is None:
                jobs: queue.Queue[Job | None] = queue.Queue()
                thread = threading.Thread(target=self._work, args=(zone, jobs), daemon=True,
                                          name=f"clc-launches-{zone}")
                worker = self._workers[zone] = _Worker(jobs, thread)
                thread.start()
        worker.jobs.put(job)

    @staticmethod
    def _work(zone: str, jobs: queue.Queue[Job | None]) -> None:
        while (job := jobs.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - a bug in one job is logged; the zone's queue goes on
                LOG.exception("launch job for zone %s failed", zone)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs (a CC that hangs is left to its timeout) and end the workers."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.jobs.put(None)
        for worker in workers:
            worker.thread.join(timeout)
