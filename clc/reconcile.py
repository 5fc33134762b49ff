"""The CLC's reconciliation loop: compare what users asked for (`desired_state`) with what each
zone's CC reports, and act. Level-triggered and idempotent: every round looks at the whole
picture afresh, so a lost call, a restart of any service, or running it twice changes nothing
but the outcome's timing.

Each round, per zone:
- reported states move the CLC's records (pending -> running, -> terminated with the NC's
  reason), through `clc.instances.transition`;
- an instance the user terminated is terminated on the CC until the CC reports it gone;
- an instance still pending after INSTANCE_PENDING_TIMEOUT fails with its reason, and so does
  one its zone has stopped reporting for several rounds (its node went away);
- an instance the CC runs but the CLC never recorded (a launch cut short by a crash) is
  terminated once it is old enough not to be a launch still being recorded;
- terminated instances older than an hour are forgotten."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from clc import tagging
from clc.instances import ALLOWED, KEEP_TERMINATED, aware, server_error, transition, utcnow
from clc.models.instances import Instance, InstanceGroup
from clc.zones_client import ZoneServices, ZoneUnavailable
from services.config import CloudConfig
from services.db import Database
from services.internal import InternalCallError
from services.messages.cluster import ClusterInstance
from services.tracing import TraceRecorder

LOG = logging.getLogger(__name__)

MISSING_ROUNDS = 3          # rounds a zone may fail to report an instance before it is lost
ORPHAN_GRACE = timedelta(minutes=2)


@dataclass
class RoundResult:
    zone: str
    reachable: bool = True
    changed: list[str] = field(default_factory=list)
    terminated_on_zone: list[str] = field(default_factory=list)
    purged: int = 0


def _reason_changed(row: Instance, item: ClusterInstance) -> bool:
    return (item.reason.message if item.reason else None) != row.state_reason_message


class Reconciler:
    def __init__(self, config: CloudConfig, db: Database, services: ZoneServices,
                 recorder: TraceRecorder | None = None, interval: float | None = None) -> None:
        self.config = config
        self.db = db
        self.services = services
        self.recorder = recorder
        self.interval = interval or max(0.2, min(config.NC_POLLING_FREQUENCY, 5.0))
        self.pending_timeout = timedelta(seconds=config.INSTANCE_PENDING_TIMEOUT)
        self._missing: dict[str, int] = {}

    def _note(self, what: str, **detail: object) -> None:
        LOG.info("reconcile: %s %s", what, detail or "")
        if self.recorder is not None:
            self.recorder.record("decided", what, request_id="reconcile", **detail)

    # -- one round -----------------------------------------------------------------------------

    def run_once(self) -> list[RoundResult]:
        return [self._zone_round(zone) for zone in self.config.zones]

    def _zone_round(self, zone: str) -> RoundResult:
        result = RoundResult(zone)
        try:
            report = self.services.describe_instances(zone)
        except (ZoneUnavailable, InternalCallError) as exc:
            LOG.warning("reconcile: zone %s did not report: %s", zone, exc)
            result.reachable = False
            return result
        reported = {i.instance_id: i for i in report.instances}
        now = utcnow()
        to_terminate: list[str] = []
        with self.db.session() as session:
            rows = list(session.scalars(select(Instance).where(Instance.zone == zone,
                                                               Instance.state != "terminated")))
            for row in rows:
                before = row.state
                if self._settle(row, reported.get(row.id), now):
                    to_terminate.append(row.id)
                if row.state != before:
                    result.changed.append(row.id)
                    self._note(f"{row.id}: {before} -> {row.state}", reason=row.state_reason_message)
            known = set(session.scalars(select(Instance.id).where(Instance.id.in_(list(reported)))))
            result.purged = self._purge(session, now)
        for instance_id, item in reported.items():
            if (instance_id not in known and item.state not in ("terminated", "shutting-down")
                    and aware(item.launched_at) < now - ORPHAN_GRACE):  # type: ignore[operator]
                to_terminate.append(instance_id)
                self._note(f"{instance_id}: runs on {item.node_id} but no user launched it; terminating")
        for instance_id in to_terminate:
            try:
                self.services.terminate(zone, instance_id)
                result.terminated_on_zone.append(instance_id)
            except (ZoneUnavailable, InternalCallError) as exc:
                LOG.warning("reconcile: terminate %s on zone %s: %s (next round retries)",
                            instance_id, zone, exc)
        return result

    def _settle(self, row: Instance, item: ClusterInstance | None, now: datetime) -> bool:
        """Bring one record in line with its report; True when the zone must terminate it."""
        if item is not None:
            self._missing.pop(row.id, None)
            row.node = item.node_id
        if row.desired_state == "terminated":
            if item is None or item.state == "terminated":
                transition(row, "terminated", now=now)
                return False
            if row.state in ("pending", "running"):
                transition(row, "shutting-down", now=now)
            return item.state != "shutting-down"
        if item is None:
            self._missing[row.id] = self._missing.get(row.id, 0) + 1
            if self._missing[row.id] >= MISSING_ROUNDS and aware(row.launched_at) < now - ORPHAN_GRACE / 4:  # type: ignore[operator]
                self._missing.pop(row.id, None)
                transition(row, "terminated", server_error(
                    f"zone {row.zone} no longer reports the instance (its node {row.node} lost it)"), now=now)
                return False
        elif item.state != row.state and item.state in ALLOWED.get(row.state, set()):
            reason = item.reason
            if item.state == "terminated" and reason is None:
                reason = server_error(f"the instance stopped on node {item.node_id}")
            transition(row, item.state, reason, now=now)
        elif row.state in ("pending", "running") and _reason_changed(row, item):
            # Same state, new news: its node went down (or came back); say so, state unchanged.
            row.state_reason_code = item.reason.code if item.reason else None
            row.state_reason_message = item.reason.message if item.reason else None
        if row.state == "pending" and aware(row.launched_at) < now - self.pending_timeout:  # type: ignore[operator]
            last = f": {row.state_reason_message}" if row.state_reason_message else ""
            transition(row, "terminated", server_error(
                f"the instance was still pending after {self.pending_timeout.total_seconds():.0f} s{last}"),
                now=now)
            return item is not None
        return False

    def _purge(self, session, now: datetime) -> int:  # type: ignore[no-untyped-def]
        old = list(session.scalars(select(Instance).where(
            Instance.state == "terminated", Instance.terminated_at < now - KEEP_TERMINATED)))
        for row in old:
            tagging.delete_all_tags(session, row.account_id, row.id)
            session.execute(delete(InstanceGroup).where(InstanceGroup.instance_id == row.id))
            session.delete(row)
        return len(old)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # noqa: BLE001 - one bad round must not end the loop
                LOG.exception("reconcile round failed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
