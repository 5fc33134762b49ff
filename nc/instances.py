"""The instances of one node: run (answers `pending` at once, prepares in the background),
terminate, reboot, console, describe, and what they book. Every state change goes through
`nc.states.transition`, under one lock, so concurrent requests never book the same cores
twice and a terminate during preparation is never lost."""

from __future__ import annotations

import threading
from concurrent.futures import Executor
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from nc.hypervisor import HypervisorError, tail_of
from nc.image_cache import ImageFetchError
from nc.instance_store import DiskError
from nc.launch import Launcher, LaunchCancelled, image_keys
from nc.models import InstanceRecord, utcnow
from nc.resources import booked
from nc.states import LIVE_STATES, USER_SHUTDOWN, internal_error, reason_of, transition
from services.db import Database
from services.messages.node import (ConsoleOutput, InstanceReport, InstanceState, PowerState, Resources,
                                    RunInstance, StateReason, VmType)
from services.tracing import TraceRecorder, current_request_id

CONSOLE_LIMIT = 64 * 1024
KEEP_TERMINATED = timedelta(hours=1)


class NotFound(Exception):
    """No such instance on this node (404)."""


class Refused(Exception):
    """The node cannot do this now (409): asleep, full, or the instance's state forbids it."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _new_record(request: RunInstance, state: InstanceState) -> InstanceRecord:
    now = utcnow()
    return InstanceRecord(
        instance_id=request.instance_id, reservation_id=request.reservation_id,
        account_id=request.account_id, state=state, vm_name=request.vm.name,
        cores=request.vm.cpu, memory_mb=request.vm.memory_mb, disk_gb=request.vm.disk_gb,
        image_id=request.image.image_id, request_json=request.model_dump_json(),
        launched_at=now, updated_at=now)


class InstanceManager:
    def __init__(self, node_id: str, db: Database, launcher: Launcher, executor: Executor,
                 recorder: TraceRecorder) -> None:
        self.node_id = node_id
        self.db = db
        self.launcher = launcher
        self.executor = executor
        self.recorder = recorder
        self.power: PowerState = "awake"
        self._lock = threading.RLock()
        self._preparing: set[str] = set()
        self._requests: dict[str, RunInstance] = {}

    # ----- reading -------------------------------------------------------------------------

    def _record(self, session: Session, instance_id: str) -> InstanceRecord:
        record = session.get(InstanceRecord, instance_id)
        if record is None:
            raise NotFound(f"no instance {instance_id} on node {self.node_id}")
        return record

    def request_of(self, record: InstanceRecord) -> RunInstance:
        cached = self._requests.get(record.instance_id)
        if cached is None:
            cached = self._requests[record.instance_id] = RunInstance.model_validate_json(record.request_json)
        return cached

    def report(self, record: InstanceRecord) -> InstanceReport:
        request = self.request_of(record)
        return InstanceReport(
            instance_id=record.instance_id, reservation_id=record.reservation_id,
            account_id=record.account_id, node_id=self.node_id, state=record.state,  # type: ignore[arg-type]
            reason=reason_of(record), vm=request.vm, image_id=record.image_id,
            launched_at=_aware(record.launched_at), network=request.network)

    def live_records(self) -> list[InstanceRecord]:
        with self.db.session() as session:
            return list(session.scalars(select(InstanceRecord).where(InstanceRecord.state.in_(LIVE_STATES))))

    def describe(self) -> list[InstanceReport]:
        self._purge_terminated()
        with self.db.session() as session:
            records = list(session.scalars(select(InstanceRecord).order_by(InstanceRecord.launched_at)))
        return [self.report(r) for r in records]

    def get(self, instance_id: str) -> InstanceReport:
        with self.db.session() as session:
            return self.report(self._record(session, instance_id))

    def is_preparing(self, instance_id: str) -> bool:
        with self._lock:
            return instance_id in self._preparing

    def booked(self) -> Resources:
        """What live instances booked (asked on every run and every poll): only their sizes are
        read, not their whole records."""
        with self.db.session() as session:
            rows = session.execute(
                select(InstanceRecord.cores, InstanceRecord.memory_mb, InstanceRecord.disk_gb)
                .where(InstanceRecord.state.in_(LIVE_STATES))).all()
        return booked(VmType(name="-", cpu=cores, memory_mb=memory, disk_gb=disk)
                      for cores, memory, disk in rows)

    def keys_in_use(self) -> set[str]:
        keys: set[str] = set()
        for record in self.live_records():
            keys |= image_keys(self.request_of(record))
        return keys

    def console(self, instance_id: str) -> ConsoleOutput:
        with self.db.session() as session:
            request = self.request_of(self._record(session, instance_id))
        try:
            data = self.launcher.hypervisor.console_tail(instance_id, CONSOLE_LIMIT)
        except HypervisorError:
            # No domain (failed, terminated, or not defined yet): the file may still tell why.
            data = tail_of(self.launcher.store.paths(request.account_id, instance_id).console_log,
                           CONSOLE_LIMIT)
        return ConsoleOutput(instance_id=instance_id, output=data.decode("utf-8", "replace"),
                             timestamp=utcnow())

    # ----- changing ------------------------------------------------------------------------

    def _change(self, instance_id: str, new: InstanceState, reason: StateReason | None = None) -> InstanceRecord:
        with self._lock, self.db.session() as session:
            record = self._record(session, instance_id)
            transition(session, record, new, reason)
            return record

    def state_of(self, instance_id: str) -> str | None:
        with self.db.session() as session:
            record = session.get(InstanceRecord, instance_id)
            return record.state if record else None

    def run(self, request: RunInstance, capacity: Resources) -> InstanceReport:
        """Book the instance and answer `pending`; the launch continues in the background.
        `capacity` is the node's maximum; a second identical request is answered the same."""
        with self._lock:
            with self.db.session() as session:
                existing = session.get(InstanceRecord, request.instance_id)
                if existing is not None:
                    return self.report(existing)
            if self.power != "awake":
                raise Refused(f"node {self.node_id} is asleep; wake it before running instances")
            free = capacity.minus(self.booked())
            if not free.fits(request.vm.needs()):
                raise Refused(f"InsufficientInstanceCapacity: node {self.node_id} has {free.cores} cores, "
                              f"{free.memory_mb} MB, {free.disk_gb} GB free; {request.vm.name} needs "
                              f"{request.vm.needs().model_dump()}")
            record = _new_record(request, "pending")
            with self.db.session() as session:
                session.add(record)
            self._requests[request.instance_id] = request
            self._preparing.add(request.instance_id)
        self.recorder.record("decided", f"accepted {request.instance_id} ({request.vm.name}) on node "
                             f"{self.node_id}; preparing in the background")
        self.executor.submit(self._prepare, request, current_request_id())
        return self.report(record)

    def resume(self, request: RunInstance) -> None:
        """Prepare again an instance left `pending` by a crash: partial work is undone first."""
        with self._lock:
            self._preparing.add(request.instance_id)
        self.executor.submit(self._prepare, request, None, True)

    def _prepare(self, request: RunInstance, request_id: str | None, from_scratch: bool = False) -> None:
        instance_id = request.instance_id
        proceed = lambda: self.state_of(instance_id) == "pending"  # noqa: E731
        try:
            if from_scratch:
                self.launcher.teardown(request, keep_console=True)
            self.launcher.boot(request, request_id, proceed)
            with self._lock:
                if proceed():
                    self._change(instance_id, "running")
                    self.recorder.record("decided", f"{instance_id} is running", request_id=request_id)
        except LaunchCancelled:
            pass
        except (ImageFetchError, DiskError, HypervisorError) as exc:
            self._fail(request, str(exc), request_id)
        except Exception as exc:  # noqa: BLE001 - any failure must end as a StateReason
            self._fail(request, f"unexpected error while launching: {exc!r}", request_id)
        finally:
            self._done_preparing(request)

    def _done_preparing(self, request: RunInstance) -> None:
        """A launch or restart has ended: a terminate that came meanwhile left the teardown to
        it, so it is carried out now."""
        with self._lock:
            self._preparing.discard(request.instance_id)
            terminating = self.state_of(request.instance_id) == "shutting-down"
        if terminating:
            self._teardown(request)

    def _fail(self, request: RunInstance, message: str, request_id: str | None) -> None:
        self.recorder.record("error", f"{request.instance_id} failed: {message}", request_id=request_id)
        self.launcher.note(request, f"launch failed: {message}")
        try:
            self.launcher.teardown(request, keep_console=True)
        except Exception:  # noqa: BLE001 - the instance is failing anyway; its reason says why
            pass
        with self._lock:
            if self.state_of(request.instance_id) in ("pending", "running"):
                self._change(request.instance_id, "terminated", internal_error(message))

    def terminate(self, instance_id: str) -> InstanceReport:
        with self._lock:
            state = self.state_of(instance_id)
            if state is None:
                raise NotFound(f"no instance {instance_id} on node {self.node_id}")
            if state in ("shutting-down", "terminated"):
                return self.get(instance_id)
            record = self._change(instance_id, "shutting-down", USER_SHUTDOWN)
            preparing = instance_id in self._preparing
        request = self.request_of(record)
        self.launcher.note(request, "terminate requested")
        if not preparing:   # else the preparing thread sees shutting-down and tears down itself
            self.executor.submit(self._teardown, request)
        return self.report(record)

    def _teardown(self, request: RunInstance) -> None:
        try:
            self.launcher.teardown(request, keep_console=False)
        except HypervisorError as exc:
            self.recorder.record("error", f"teardown of {request.instance_id}: {exc}")
        self._change(request.instance_id, "terminated")

    def restart(self, request: RunInstance, why: str) -> None:
        """Bring back, in the background, a running instance whose domain is gone or stopped.
        Like a launch, it counts as preparing, so a terminate meanwhile is honoured after it."""
        with self._lock:
            self._preparing.add(request.instance_id)
        self.executor.submit(self._restart, request, why)

    def _restart(self, request: RunInstance, why: str) -> None:
        try:
            self.launcher.restart(request, why, lambda: self.state_of(request.instance_id) == "running")
        except LaunchCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - whatever broke, the instance must say so
            self.lost(request, "the instance's domain was gone after a restart of its host and "
                               f"could not be started again: {exc}")
        finally:
            self._done_preparing(request)

    def finish_teardown(self, request: RunInstance) -> None:
        """For reconciliation: an instance left shutting-down by a crash."""
        self.executor.submit(self._teardown, request)

    def reboot(self, instance_id: str) -> InstanceReport:
        with self.db.session() as session:
            record = self._record(session, instance_id)
            report, request = self.report(record), self.request_of(record)
        if report.state != "running":
            raise Refused(f"{instance_id} is {report.state}; only a running instance can be rebooted")
        self.launcher.reboot(request)
        return report

    def lost(self, request: RunInstance, message: str) -> None:
        """A running instance whose domain is gone for good."""
        self.launcher.note(request, message)
        with self._lock:
            if self.state_of(request.instance_id) == "running":
                self._change(request.instance_id, "terminated", internal_error(message))

    def _purge_terminated(self) -> None:
        cutoff = utcnow() - KEEP_TERMINATED
        with self._lock, self.db.session() as session:
            old = list(session.scalars(select(InstanceRecord).where(
                InstanceRecord.state == "terminated", InstanceRecord.updated_at < cutoff)))
            for record in old:
                self.launcher.store.remove(record.account_id, record.instance_id)
                self._requests.pop(record.instance_id, None)
                session.delete(record)

    def set_power(self, power: PowerState) -> None:
        with self._lock:
            if power == "asleep" and self.live_records():
                raise Refused(f"node {self.node_id} still has instances; it cannot sleep")
            self.power = power

    def adopt(self, request: RunInstance) -> None:
        """A running domain of ours with no record (the database was lost): record it."""
        with self._lock, self.db.session() as session:
            if session.get(InstanceRecord, request.instance_id) is not None:
                return
            session.add(_new_record(request, "running"))
        self._requests[request.instance_id] = request


__all__ = ["InstanceManager", "NotFound", "Refused"]
