"""The CLC's reconciliation with its zones: compare what users asked for (`desired_state`)
with what each zone's CC reports, and act. Two ways in, one rule (`settle`):

- pushed: the CC posts ZoneEvents (changed instances, its capacity when it changed) the moment
  it learns of a change; `apply_events` settles those instances at once;
- polled: every NC_POLLING_FREQUENCY (Eucalyptus's period, the safety net for a lost push)
  a round asks each zone for its whole ZoneReport, subscribing this CLC to its pushes as it
  does, and settles every instance. Level-triggered and idempotent: every round looks at the
  whole picture afresh, so a lost call, a restart of any service, or running it twice changes
  nothing but the outcome's timing.

What settling does:
- reported states move the CLC's records (pending -> running, -> terminated with the NC's
  reason), through `clc.instances.transition`;
- an instance the user terminated is terminated on the CC until the CC reports it gone;
- an instance still pending after INSTANCE_PENDING_TIMEOUT fails with its reason, and so does
  a placed one its zone has stopped reporting for several rounds (its node went away);
- an instance the CC runs but the CLC never recorded (a launch cut short by a crash) is
  terminated once it is old enough not to be a launch still being recorded;
- terminated instances older than an hour are forgotten;
- the volumes each instance's node reports go to `disks_reported` (a disk the CLC does not
  have attached there is taken off again)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clc import tagging
from clc.instances import LIVE, MOVES, server_error, state, stopped_on_zone, transition
from clc.models.instances import Instance, InstanceGroup
from clc.placement import Launches, subscription
from clc.network_sync import NetworkSync
from clc.zones_client import ZoneClient, ZoneError
from services.clock import KEEP_TERMINATED, aware, utcnow
from services.config import CloudConfig
from services.db import Database
from services.messages.cluster import ClusterInstance, ZoneEvents
from services.rounds import in_rounds
from services.tracing import TraceRecorder

LOG = logging.getLogger(__name__)

MISSING_ROUNDS = 3          # rounds a zone may fail to report an instance before it is lost
ORPHAN_GRACE = timedelta(minutes=2)
GONE = ("terminated", "shutting-down")


@dataclass
class RoundResult:
    zone: str
    reachable: bool = True
    changed: list[str] = field(default_factory=list)
    terminated_on_zone: list[str] = field(default_factory=list)
    purged: int = 0


def settle(row: Instance, item: ClusterInstance, now: datetime) -> bool:
    """Bring one record in line with what its zone reports of it; True when the zone must
    terminate the instance."""
    if row.state == "terminated":       # ended here (refused, or terminated before placing)
        return item.state not in GONE
    if row.root_device_type == "ebs" and row.launched_at is not None and \
            aware(item.launched_at) < aware(row.launched_at):  # type: ignore[operator]
        # A report of the run before a stop (the node keeps its terminated record a while):
        # news of nothing the instance is now.
        return False
    if row.desired_state == "stopped":
        if item.state == "terminated":
            stopped_on_zone(row, now)
            return False
        if state(row) in LIVE:
            transition(row, "stopping", now=now)
        row.node = item.node_id
        return item.state != "shutting-down"
    row.node = item.node_id
    if row.desired_state == "terminated":
        if item.state == "terminated":
            transition(row, "terminated", now=now)
            return False
        if state(row) in LIVE:
            transition(row, "shutting-down", now=now)
        return item.state != "shutting-down"
    if item.state == row.state:
        if state(row) in LIVE:          # same state, new news: its node went down, or came back
            transition(row, state(row), item.reason, now=now)
    elif MOVES.allows(state(row), item.state):
        reason = item.reason
        if item.state == "terminated" and reason is None:
            reason = server_error(f"the instance stopped on node {item.node_id}")
        transition(row, item.state, reason, now=now)
    return False


class Reconciler:
    def __init__(self, config: CloudConfig, db: Database, zones: ZoneClient,
                 launches: Launches | None = None, recorder: TraceRecorder | None = None,
                 interval: float | None = None, network: NetworkSync | None = None,
                 disks_reported: Callable[[str, list[ClusterInstance]], None] | None = None) -> None:
        self.config = config
        # Volume work (clc/volume_work.py) compares the disks each whole report lists with the
        # attachments the CLC recorded.
        self.disks_reported = disks_reported
        self.network = network
        self.db = db
        self.zones = zones
        self.launches = launches
        self.recorder = recorder
        self.interval = interval or config.NC_POLLING_FREQUENCY
        self._missing: dict[str, int] = {}
        self.started = utcnow()

    @property
    def pending_timeout(self) -> timedelta:
        # Read each round: `eucasim property set cloud.vmstate.pending_timeout` changes it.
        return timedelta(seconds=self.config.INSTANCE_PENDING_TIMEOUT)

    def _note(self, what: str, **detail: object) -> None:
        LOG.info("reconcile: %s %s", what, detail or "")
        if self.recorder is not None:
            self.recorder.record("decided", what, request_id="reconcile", **detail)

    def _terminate_on_zone(self, zone: str, instance_ids: list[str]) -> list[str]:
        done = []
        for instance_id in instance_ids:
            try:
                self.zones.terminate(zone, instance_id)
                done.append(instance_id)
            except ZoneError as exc:
                LOG.warning("reconcile: terminate %s on zone %s: %s (next round retries)",
                            instance_id, zone, exc)
        return done

    # -- pushed --------------------------------------------------------------------------------

    def apply_events(self, zone: str, events: ZoneEvents) -> tuple[list[str], bool]:
        """Settle what `zone` pushed, at once; returns the instances whose state changed, and
        whether a capacity view it carried was refused (a delta on a base this CLC does not
        hold, or a view a newer one overtook: the CC then sends its next one whole).
        `zone` is the subscription's key, not the name the sender put in the body."""
        refused = False
        if events.capacity is not None and self.launches is not None:
            refused = not self.launches.capacity_arrived(zone, events.capacity, whole_report=False)
        return self._apply_instance_events(zone, events), refused

    def _apply_instance_events(self, zone: str, events: ZoneEvents) -> list[str]:
        if not events.instances:
            return []
        now = utcnow()
        changed: list[str] = []
        to_terminate: list[str] = []
        with self.db.session() as session:
            ids = [item.instance_id for item in events.instances]
            rows = {r.id: r for r in session.scalars(select(Instance).where(
                Instance.id.in_(ids), Instance.zone == zone))}
            for item in events.instances:
                row = rows.get(item.instance_id)
                if row is None:  # never recorded here: the round decides about orphans
                    continue
                self._missing.pop(row.id, None)
                before = row.state
                if settle(row, item, now):
                    to_terminate.append(row.id)
                if row.state != before:
                    changed.append(row.id)
                    self._note(f"{row.id}: {before} -> {row.state} (pushed)",
                               reason=row.state_reason_message)
        for instance_id in to_terminate:
            if self.launches is not None:  # not on the CC's own push: on the zone's queue
                self.launches.terminate_on_zone(zone, instance_id)
        if changed and self.network is not None:  # an instance that ended frees its addresses
            self.network.changed(zone)
        return changed

    # -- polled: one round ---------------------------------------------------------------------

    def run_once(self) -> list[RoundResult]:
        return [self._zone_round(zone) for zone in self.config.zones]

    def _zone_round(self, zone: str) -> RoundResult:
        result = RoundResult(zone)
        try:
            report = self.zones.describe(zone, subscription(self.config, zone))
        except ZoneError as exc:
            LOG.warning("reconcile: zone %s did not report: %s", zone, exc)
            result.reachable = False
            return result
        if self.launches is not None:
            self.launches.capacity_arrived(zone, report.capacity, whole_report=True)
        # One report per instance; a live one wins (an EBS-backed instance started again on
        # another node than the one still reporting its earlier, stopped, run).
        reported: dict[str, ClusterInstance] = {}
        for item in report.instances:
            if item.instance_id not in reported or item.state not in GONE:
                reported[item.instance_id] = item
        now = utcnow()
        to_terminate: list[str] = []
        with self.db.session() as session:
            rows = list(session.scalars(select(Instance).where(Instance.zone == zone,
                                                               Instance.state != "terminated")))
            for row in rows:
                before = row.state
                if self._settle_polled(row, reported.get(row.id), now, report.nodes_settled):
                    to_terminate.append(row.id)
                if row.state != before:
                    result.changed.append(row.id)
                    self._note(f"{row.id}: {before} -> {row.state}", reason=row.state_reason_message)
            ended = {r.id: r for r in session.scalars(select(Instance).where(
                Instance.id.in_(list(reported)), Instance.state == "terminated"))}
            known = {r.id for r in rows} | set(ended)
            result.purged = self._purge(session, now)
        for instance_id, item in reported.items():
            if instance_id in ended:
                if item.state not in GONE:
                    to_terminate.append(instance_id)
            elif (instance_id not in known and item.state not in GONE
                    and aware(item.launched_at) < now - ORPHAN_GRACE):  # type: ignore[operator]
                to_terminate.append(instance_id)
                self._note(f"{instance_id}: runs on {item.node_id} but no user launched it; terminating")
        result.terminated_on_zone = self._terminate_on_zone(zone, to_terminate)
        if self.disks_reported is not None:
            self.disks_reported(zone, report.instances)
        if self.network is not None:  # level-triggered: the CC no-ops an unchanged plan
            self.network.changed(zone, repair=True)
        return result

    def _settle_polled(self, row: Instance, item: ClusterInstance | None, now: datetime,
                       whole: bool = True) -> bool:
        """`settle`, plus what only a whole report shows: an instance it leaves out (not
        counted while the CC has yet to hear from some node: `whole` False)."""
        if item is not None:
            self._missing.pop(row.id, None)
            terminate = settle(row, item, now)
        else:
            terminate = False
            if row.desired_state == "stopped" and row.state == "stopping":
                stopped_on_zone(row, now)
            elif row.desired_state == "terminated" and row.node is not None:
                transition(row, "terminated", now=now)
            elif (row.state == "pending" and row.node is None
                    and aware(row.updated_at) < self.started):  # type: ignore[operator]
                # Admitted and answered by a CLC that died before its CC placed it: the
                # placement job died with it, and the CC does not know the instance.
                transition(row, "terminated", server_error(
                    "the cloud controller restarted before the instance was placed"), now=now)
            elif row.node is not None and whole:  # placed, yet not reported: count the rounds
                self._missing[row.id] = self._missing.get(row.id, 0) + 1
                if (self._missing[row.id] >= MISSING_ROUNDS
                        and aware(row.launched_at) < now - ORPHAN_GRACE / 4):  # type: ignore[operator]
                    self._missing.pop(row.id, None)
                    transition(row, "terminated", server_error(
                        f"zone {row.zone} no longer reports the instance (its node {row.node} lost it)"),
                        now=now)
        if row.state == "pending" and aware(row.launched_at) < now - self.pending_timeout:  # type: ignore[operator]
            last = f": {row.state_reason_message}" if row.state_reason_message else ""
            transition(row, "terminated", server_error(
                f"the instance was still pending after {self.pending_timeout.total_seconds():.0f} s{last}"),
                now=now)
            return item is not None
        return terminate

    def _purge(self, session: Session, now: datetime) -> int:
        old = list(session.scalars(select(Instance).where(
            Instance.state == "terminated", Instance.terminated_at < now - KEEP_TERMINATED)))
        for row in old:
            tagging.delete_all_tags(session, row.account_id, row.id)
            session.execute(delete(InstanceGroup).where(InstanceGroup.instance_id == row.id))
            session.delete(row)
        return len(old)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await in_rounds(stop, self.run_once, self.interval, "reconcile round", LOG)
