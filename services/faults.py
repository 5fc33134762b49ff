"""Faults of this service process, injected by an operator (`eucasim fault inject link-cut` /
`clock-skew`) through every service's /internal/process-faults route: the internal client
refuses calls to a cut peer as a dropped network would (httpx.ConnectError), and the process's
clock — utcnow, the timestamps it signs and checks — runs skewed."""

from __future__ import annotations

import errno
import threading

import httpx

from services.messages.faults import InjectProcessFault, ProcessFaultList


class ProcessFaults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.skew_s = 0.0
        self.disk_full = False
        self._cut: tuple[str, ...] = ()

    def inject(self, fault: InjectProcessFault) -> None:
        with self._lock:
            if fault.kind == "clock-skew":
                self.skew_s = fault.seconds
            elif fault.kind == "disk-full":
                self.disk_full = True
            elif fault.target.rstrip("/") not in self._cut:
                self._cut = (*self._cut, fault.target.rstrip("/"))

    def clear(self) -> None:
        with self._lock:
            self.skew_s, self.disk_full, self._cut = 0.0, False, ()

    def listing(self) -> ProcessFaultList:
        faults = [InjectProcessFault(kind="link-cut", target=url) for url in self._cut]
        if self.disk_full:
            faults.append(InjectProcessFault(kind="disk-full"))
        if self.skew_s:
            faults.append(InjectProcessFault(kind="clock-skew", seconds=self.skew_s))
        return ProcessFaultList(faults=faults)

    def check_write(self, what: str) -> None:
        """Called before a service writes its data (the SC a volume): refuse as a full disk."""
        if self.disk_full:
            raise OSError(errno.ENOSPC, "No space left on device (disk-full fault)", what)

    def check_link(self, url: str) -> None:
        """Called before every internal call: raise as a dropped network does."""
        if self._cut and url.startswith(self._cut):
            raise httpx.ConnectError(f"link to {url} cut (injected fault)")


PROCESS = ProcessFaults()
