"""Freezing and thawing a running guest's file systems around a snapshot's point-in-time step
(services/messages/freeze.py), through the hypervisor's guest agent.

A freeze that cannot happen (no agent; libvirt's test driver runs no guest; the instance is not
running) answers `frozen: false` with the reason, and the snapshot is crash-consistent. A freeze
that happened is always thawed: by the CLC's thaw, or by this node itself once `thaw_after_s`
has passed without one (a watchdog per instance), so a CLC that died between the two cannot
leave a guest frozen. Each freeze and thaw is a step of the request's trace, with the time the
hypervisor call returned, which is how a test (and a student) sees that the freeze came before
the SC's step and the thaw after it."""

from __future__ import annotations

import logging
import threading
import time

from nc.hypervisor import AgentUnavailable, Hypervisor, HypervisorError
from nc.instances import InstanceManager
from nc.volumes import VolumeFault
from services.clock import utcnow
from services.messages.freeze import FreezeFilesystems, FreezeResult, ThawFilesystems
from services.tracing import TraceRecorder

log = logging.getLogger(__name__)


class Quiescer:
    def __init__(self, manager: InstanceManager, hypervisor: Hypervisor, recorder: TraceRecorder) -> None:
        self.manager = manager
        self.hypervisor = hypervisor
        self.recorder = recorder
        self._lock = threading.Lock()
        self._watchdogs: dict[str, threading.Timer] = {}    # instance id -> its automatic thaw

    def _known(self, instance_id: str) -> str:
        state = self.manager.state_of(instance_id)
        if state is None:
            raise VolumeFault(404, "InvalidInstanceID.NotFound",
                              f"The instance ID '{instance_id}' does not exist on node {self.manager.node_id}")
        return state

    def freeze(self, instance_id: str, body: FreezeFilesystems) -> FreezeResult:
        state = self._known(instance_id)
        if state != "running":
            return self._not_frozen(instance_id, body.volume_id, f"instance {instance_id} is {state}")
        with self._lock:
            if instance_id in self._watchdogs:
                # QEMU's agent refuses a second freeze; two snapshots of one guest at once would
                # otherwise thaw each other's freeze early.
                raise VolumeFault(409, "IncorrectState",
                                  f"the file systems of {instance_id} are frozen for another snapshot")
            started = time.perf_counter()
            try:
                count = self.hypervisor.freeze_filesystems(instance_id)
            except AgentUnavailable as exc:
                return self._not_frozen(instance_id, body.volume_id, str(exc))
            except HypervisorError as exc:
                # An agent that answered but failed: no freeze holds (QEMU's agent thaws what it
                # froze when a freeze fails half-way), so the snapshot goes on crash-consistent.
                return self._not_frozen(instance_id, body.volume_id, str(exc))
            watchdog = threading.Timer(body.thaw_after_s, self._thaw_by_watchdog, (instance_id, body.thaw_after_s))
            watchdog.daemon = True
            self._watchdogs[instance_id] = watchdog
            watchdog.start()
        elapsed = (time.perf_counter() - started) * 1000
        self.recorder.record("called", f"froze {count} file system(s) of {instance_id} for a snapshot of "
                             f"{body.volume_id} (fsFreeze)", elapsed_ms=elapsed, thaw_after_s=body.thaw_after_s)
        return FreezeResult(instance_id=instance_id, frozen=True, filesystems=count, at=utcnow())

    def thaw(self, instance_id: str, body: ThawFilesystems) -> FreezeResult:
        self._known(instance_id)
        count = self._thaw(instance_id)
        self.recorder.record("called", f"thawed {count} file system(s) of {instance_id} after the snapshot of "
                             f"{body.volume_id} (fsThaw)")
        return FreezeResult(instance_id=instance_id, frozen=False, filesystems=count, at=utcnow())

    def _thaw(self, instance_id: str) -> int:
        with self._lock:
            watchdog = self._watchdogs.pop(instance_id, None)
            if watchdog is None:
                return 0        # not frozen by us: nothing to thaw
            watchdog.cancel()
            try:
                return self.hypervisor.thaw_filesystems(instance_id)
            except AgentUnavailable:
                return 0        # the guest went away meanwhile; nothing is frozen any more
            except HypervisorError:
                # The agent is still there but failed: keep trying, as the watchdog would.
                self._arm_again(instance_id)
                raise

    def _arm_again(self, instance_id: str) -> None:
        retry = threading.Timer(1.0, self._thaw_by_watchdog, (instance_id, 1.0))
        retry.daemon = True
        self._watchdogs[instance_id] = retry
        retry.start()

    def _thaw_by_watchdog(self, instance_id: str, after_s: float) -> None:
        try:
            count = self._thaw(instance_id)
        except HypervisorError as exc:
            log.warning("automatic thaw of %s failed (retrying): %s", instance_id, exc)
            return
        log.warning("thawed %d file system(s) of %s by itself: no thaw came within %.0f s",
                    count, instance_id, after_s)

    def _not_frozen(self, instance_id: str, volume_id: str, reason: str) -> FreezeResult:
        self.recorder.record("decided", f"no freeze of {instance_id} for the snapshot of {volume_id}: {reason}")
        return FreezeResult(instance_id=instance_id, frozen=False, reason=reason, at=utcnow())

    def close(self) -> None:
        """Thaw whatever is still frozen (the NC is stopping)."""
        with self._lock:
            frozen = list(self._watchdogs)
        for instance_id in frozen:
            try:
                self._thaw(instance_id)
            except HypervisorError as exc:
                log.warning("thaw %s at stop: %s", instance_id, exc)
