"""The instances of one node: run (answers `pending` at once, prepares in the background),
terminate, reboot, console, describe, and what they book. Every state change goes through
`nc.states.transition`, under one lock, so concurrent requests never book the same cores
twice and a terminate during preparation is never lost; each change, once committed, is
handed to `on_change` (the process's event pusher), which must not block.

The node's rows live in its process's database under its URL prefix ("" or "/node-3")."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nc.attachments import AttachmentBook
from nc.booter import InstanceBooter, LaunchCancelled, image_keys
from nc.domain_xml import volume_target
from nc.hypervisor import HypervisorError
from nc.image_cache import ImageFetchError
from nc.instance_store import DiskError
from nc.models import InstanceRecord
from nc.resources import booked_sizes
from nc.states import LIVE_STATES, USER_SHUTDOWN, internal_error, reason_of, transition
from services.clock import KEEP_TERMINATED, aware, utcnow
from services.db import Database
from services.messages.attach import DiskAttachment
from services.messages.node import (ConsoleOutput, InstanceReport, InstanceState, PowerState, Resources,
                                    RunInstance, StateReason)
from services.tracing import TraceRecorder, current_request_id

CONSOLE_LIMIT = 64 * 1024
# A terminated instance the CC has seen is forgotten this long after it ended (a late
# terminate or describe of it still finds it meanwhile); one nobody saw, after KEEP_TERMINATED.
FORGET_SEEN = timedelta(seconds=30)
log = logging.getLogger(__name__)


class NotFound(Exception):
    """No such instance on this node (404)."""


class Refused(Exception):
    """The node cannot do this now (409): asleep, full, or the instance's state forbids it."""


def _new_record(request: RunInstance, state: InstanceState, prefix: str) -> InstanceRecord:
    now = utcnow()
    return InstanceRecord(
        instance_id=request.instance_id, prefix=prefix, reservation_id=request.reservation_id,
        account_id=request.account_id, state=state, vm_name=request.vm.name,
        cores=request.vm.cpu, memory_mb=request.vm.memory_mb, disk_gb=request.vm.disk_gb,
        image_id=request.image.image_id, request_json=request.model_dump_json(),
        launched_at=now, updated_at=now)


class InstanceManager:
    def __init__(self, node_id: str, prefix: str, db: Database, booter: InstanceBooter,
                 executor: Executor, recorder: TraceRecorder,
                 on_change: Callable[[InstanceReport], None] = lambda _report: None,
                 book: AttachmentBook | None = None) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.db = db
        self.booter = booter
        self.executor = executor
        self.recorder = recorder
        self._on_change = on_change
        self.power: PowerState = "awake"
        self._lock = threading.RLock()
        self._preparing: set[str] = set()
        self._requests: dict[str, RunInstance] = {}
        # The EBS volumes attached to this node's instances (nc.volumes attaches and detaches).
        self.book = book or AttachmentBook(db, prefix)

    @property
    def lock(self) -> threading.RLock:
        """Held while an instance's state or volumes change."""
        return self._lock

    # ----- reading -------------------------------------------------------------------------

    def _find(self, session: Session, instance_id: str) -> InstanceRecord | None:
        record = session.get(InstanceRecord, instance_id)
        return record if record is not None and record.prefix == self.prefix else None

    def _record(self, session: Session, instance_id: str) -> InstanceRecord:
        record = self._find(session, instance_id)
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
            launched_at=aware(record.launched_at), network=request.network,  # type: ignore[arg-type]
            volumes=self.book.of(record.instance_id))

    def live_records(self) -> list[InstanceRecord]:
        with self.db.session() as session:
            return list(session.scalars(select(InstanceRecord).where(
                InstanceRecord.prefix == self.prefix, InstanceRecord.state.in_(LIVE_STATES))))

    def describe(self) -> list[InstanceReport]:
        """Every instance of the node, oldest first; a pure read."""
        with self.db.session() as session:
            records = list(session.scalars(select(InstanceRecord).where(InstanceRecord.prefix == self.prefix)
                                           .order_by(InstanceRecord.launched_at)))
        return self.reports(records)

    def reports(self, records: Iterable[InstanceRecord]) -> list[InstanceReport]:
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
                .where(InstanceRecord.prefix == self.prefix, InstanceRecord.state.in_(LIVE_STATES))).all()
        return booked_sizes(rows)  # type: ignore[arg-type]

    def keys_in_use(self) -> set[str]:
        keys: set[str] = set()
        for record in self.live_records():
            keys |= image_keys(self.request_of(record))
        return keys

    def console(self, instance_id: str) -> ConsoleOutput:
        with self.db.session() as session:
            request = self.request_of(self._record(session, instance_id))
        data = self.booter.console(request, CONSOLE_LIMIT)
        return ConsoleOutput(instance_id=instance_id, output=data.decode("utf-8", "replace"),
                             timestamp=utcnow())

    # ----- changing ------------------------------------------------------------------------

    def _background(self, work: Callable[..., None], *args: object) -> None:
        """Run `work` on a launch thread. An executor keeps a task's exception in a future
        nobody reads; a bug in a background step is logged with its traceback instead."""
        def logged() -> None:
            try:
                work(*args)
            except BaseException:
                log.exception("NC background step %s failed", getattr(work, "__name__", work))
                raise
        self.executor.submit(logged)

    def _changed(self, record: InstanceRecord) -> None:
        """Called once the change is committed: the pusher queues it and returns."""
        self._on_change(self.report(record))

    def changed(self, instance_id: str) -> None:
        """Push the instance's report again: something besides its state changed (a volume)."""
        with self.db.session() as session:
            record = self._find(session, instance_id)
        if record is not None:
            self._changed(record)

    def _change(self, instance_id: str, new: InstanceState, reason: StateReason | None = None) -> InstanceRecord:
        with self._lock:
            with self.db.session() as session:
                record = self._record(session, instance_id)
                transition(session, record, new, reason)
            self._changed(record)
            return record

    def state_of(self, instance_id: str) -> str | None:
        with self.db.session() as session:
            record = self._find(session, instance_id)
            return record.state if record else None

    def run(self, request: RunInstance, capacity: Resources) -> InstanceReport:
        """Book the instance and answer `pending`; the launch continues in the background.
        `capacity` is the node's maximum; a second identical request is answered the same."""
        with self._lock:
            with self.db.session() as session:
                existing = session.get(InstanceRecord, request.instance_id)
                if existing is not None and existing.state == "terminated" and request.volumes:
                    # An EBS-backed instance started again after a stop (the CLC stops one by
                    # ending its domain here): the old record gives way to the new run.
                    session.delete(existing)
                    self._requests.pop(request.instance_id, None)
                    existing = None
                if existing is not None:
                    if existing.prefix != self.prefix:
                        raise Refused(f"{request.instance_id} already runs on another node of this NC")
                    return self.report(existing)
            if self.power != "awake":
                raise Refused(f"node {self.node_id} is asleep; wake it before running instances")
            free = capacity.minus(self.booked())
            if not free.fits(request.vm.needs()):
                raise Refused(f"InsufficientInstanceCapacity: node {self.node_id} has {free.cores} cores, "
                              f"{free.memory_mb} MB, {free.disk_gb} GB free; {request.vm.name} needs "
                              f"{request.vm.needs().model_dump()}")
            record = _new_record(request, "pending", self.prefix)
            with self.db.session() as session:
                session.add(record)
            self._requests[request.instance_id] = request
            self._book_boot_volumes(request)
            self._preparing.add(request.instance_id)
            self._changed(record)
        self.recorder.record("decided", f"accepted {request.instance_id} ({request.vm.name}) on node "
                             f"{self.node_id}; preparing in the background")
        self._background(self._prepare, request, current_request_id())
        return self.report(record)

    def _book_boot_volumes(self, request: RunInstance) -> None:
        """The volumes the instance boots with are its attachments from the start: the domain
        is defined with them (the booter reads the book) and every report lists them."""
        for volume in request.volumes:
            target = "sda1" if volume.root else volume_target(volume.device)
            self.book.put(DiskAttachment(instance_id=request.instance_id, volume_id=volume.volume_id,
                                         device=volume.device, state="attached", target=target),
                          volume.source)

    def resume(self, request: RunInstance) -> None:
        """Prepare again an instance left `pending` by a crash: partial work is undone first."""
        with self._lock:
            self._preparing.add(request.instance_id)
        self._background(self._prepare, request, None, True)

    def _prepare(self, request: RunInstance, request_id: str | None, from_scratch: bool = False) -> None:
        instance_id = request.instance_id
        proceed = lambda: self.state_of(instance_id) == "pending"  # noqa: E731
        try:
            if from_scratch:
                self.booter.teardown(request, keep_console=True)
            self.booter.boot(request, request_id, proceed)
            with self._lock:
                if proceed():
                    self._change(instance_id, "running")
                    self.recorder.record("decided", f"{instance_id} is running", request_id=request_id)
        except LaunchCancelled:
            pass
        except (ImageFetchError, DiskError, HypervisorError) as exc:
            self._fail(request, str(exc), request_id)
        except Exception as exc:  # noqa: BLE001 - a background launch has no caller to raise to
            # A bug, not a launch failure: its traceback goes to the log, and the instance
            # still ends with a reason instead of staying pending for ever.
            log.exception("launch of %s failed unexpectedly", instance_id)
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
        self.booter.note(request, f"launch failed: {message}")
        try:
            self.booter.teardown(request, keep_console=True)
        except (HypervisorError, OSError) as exc:
            # The instance is failing anyway and its reason says why; the leftover is logged.
            log.warning("teardown after the failed launch of %s: %s", request.instance_id, exc)
        with self._lock:
            self._volumes_gone(request.instance_id, "the instance failed")
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
        self.booter.note(request, "terminate requested")
        if not preparing:   # else the preparing thread sees shutting-down and tears down itself
            self._background(self._teardown, request)
        return self.report(record)

    def _teardown(self, request: RunInstance) -> None:
        try:
            self.booter.teardown(request, keep_console=False)
        except HypervisorError as exc:
            self.recorder.record("error", f"teardown of {request.instance_id}: {exc}")
        with self._lock:
            self._volumes_gone(request.instance_id, "the instance was terminated")
            self._change(request.instance_id, "terminated")

    def _volumes_gone(self, instance_id: str, why: str) -> None:
        """The instance's domain is gone, and its volume disks with it: they are detached (the
        CLC sees them missing from the terminated report and has the SC unexport them)."""
        for attachment in self.book.clear(instance_id):
            self.recorder.record("decided", f"{attachment.volume_id} detached from {instance_id}: {why}")

    def restart(self, request: RunInstance, why: str) -> None:
        """Bring back, in the background, a running instance whose domain is gone or stopped.
        Like a launch, it counts as preparing, so a terminate meanwhile is honoured after it."""
        with self._lock:
            self._preparing.add(request.instance_id)
        self._background(self._restart, request, why)

    def _restart(self, request: RunInstance, why: str) -> None:
        try:
            self.booter.restart(request, why, lambda: self.state_of(request.instance_id) == "running")
        except LaunchCancelled:
            pass
        except (ImageFetchError, DiskError, HypervisorError) as exc:
            self.lost(request, "the instance's domain was gone after a restart of its host and "
                               f"could not be started again: {exc}")
        finally:
            self._done_preparing(request)

    def finish_teardown(self, request: RunInstance) -> None:
        """For reconciliation: an instance left shutting-down by a crash."""
        self._background(self._teardown, request)

    def reboot(self, instance_id: str) -> InstanceReport:
        with self.db.session() as session:
            record = self._record(session, instance_id)
            report, request = self.report(record), self.request_of(record)
        if report.state != "running":
            raise Refused(f"{instance_id} is {report.state}; only a running instance can be rebooted")
        self.booter.reboot(request)
        return report

    def lost(self, request: RunInstance, message: str) -> None:
        """A running instance whose domain is gone for good."""
        self.booter.note(request, message)
        with self._lock:
            if self.state_of(request.instance_id) == "running":
                self._volumes_gone(request.instance_id, "the instance was lost")
                self._change(request.instance_id, "terminated", internal_error(message))

    def purge_terminated(self, seen: Callable[[str], bool] = lambda _iid: False) -> list[str]:
        """Forget terminated instances and delete what is left of their files: those the CC
        has seen terminated (`seen`, nc.changes) once FORGET_SEEN has passed, and any after
        KEEP_TERMINATED. The CLC keeps them for users as long as EC2 shows them; here they
        only cost every describe. The NC's watch loop runs it."""
        now = utcnow()
        with self._lock, self.db.session() as session:
            ended = list(session.scalars(select(InstanceRecord).where(
                InstanceRecord.prefix == self.prefix, InstanceRecord.state == "terminated",
                InstanceRecord.updated_at < now - FORGET_SEEN)))
            old = [r for r in ended if aware(r.updated_at) < now - KEEP_TERMINATED  # type: ignore[operator]
                   or seen(r.instance_id)]
            for record in old:
                self.booter.remove_files(record.account_id, record.instance_id)
                self._requests.pop(record.instance_id, None)
                session.delete(record)
        return [record.instance_id for record in old]

    def set_power(self, power: PowerState) -> None:
        with self._lock:
            if power == "asleep" and self.live_records():
                raise Refused(f"node {self.node_id} still has instances; it cannot sleep")
            self.power = power

    def adopt(self, request: RunInstance) -> None:
        """A running domain of ours with no record (the database was lost): record it."""
        with self._lock:
            with self.db.session() as session:
                if session.get(InstanceRecord, request.instance_id) is not None:
                    return
                record = _new_record(request, "running", self.prefix)
                session.add(record)
            self._requests[request.instance_id] = request
            self._changed(record)

    def note(self, request: RunInstance, *lines: str) -> None:
        """A line in the instance's simulated console (what reconciliation decided)."""
        self.booter.note(request, *lines)


__all__ = ["InstanceManager", "NotFound", "Refused"]
