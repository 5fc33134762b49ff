"""Faults injected into this NC process's simulated nodes by an operator (`eucasim fault`),
through real mechanisms: a down node's routes answer 503 and the process's describe leaves
it out (the CC counts missed polls as it would for a dead host), a slow node's hypervisor
sleeps in every call, a full disk refuses the instance store's writes with ENOSPC."""

from __future__ import annotations

import errno
import threading
import time

from services.messages.faults import FaultList, InjectFault


class NodeFaults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[tuple[str, str], InjectFault] = {}

    def inject(self, fault: InjectFault) -> None:
        with self._lock:
            self._faults[(fault.kind, fault.target)] = fault

    def clear(self, kind: str | None = None, target: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._faults if (kind in (None, k[0])) and (target in (None, k[1]))]:
                del self._faults[key]

    def listing(self) -> FaultList:
        with self._lock:
            return FaultList(faults=list(self._faults.values()))

    def is_down(self, node: str) -> bool:
        return ("node-down", node) in self._faults

    def delay(self, node: str) -> None:
        """Called by the hypervisor at each call: takes the fault's seconds while the node is
        slow, in short steps, so clearing the fault ends the wait (a call in flight finishes)."""
        fault = self._faults.get(("node-slow", node))
        if fault is None:
            return
        until = time.monotonic() + fault.seconds
        while time.monotonic() < until and ("node-slow", node) in self._faults:
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))

    def check_write(self, node: str) -> None:
        if ("disk-full", node) in self._faults:
            raise OSError(errno.ENOSPC, f"No space left on device (disk-full fault on {node})")


# One per process: the hypervisors and instance stores of its nodes consult it by node id.
FAULTS = NodeFaults()
