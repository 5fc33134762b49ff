"""What one node offers: MAX_CORES / MAX_MEM / MAX_DISK where set (any may exceed the host:
overcommit), else the host's own figures; free = max − what non-terminated instances booked
(disk includes each instance's swap). The host's real figures are reported beside them so
overcommit is visible."""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.messages.node import Resources, VmType

GIB = 1024 ** 3


@dataclass(frozen=True)
class Limits:
    """MAX_CORES, MAX_MEM (MB), MAX_DISK (GB); None = the host's figure."""
    cores: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None


def host_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 1024


class SimulatingMachine:
    """The host of every simulated node of one process is the machine simulating them: its
    cores, its memory and the free disk under INSTANCE_PATH. Read once a second at most, so a
    describe of 20,000 nodes costs one statvfs, not 20,000."""

    def __init__(self, instance_root: Path, every: float = 1.0) -> None:
        self.instance_root = instance_root
        self._every = every
        self._lock = threading.Lock()
        self._figures: Resources | None = None
        self._read_at = 0.0

    def figures(self) -> Resources:
        with self._lock:
            now = time.monotonic()
            if self._figures is None or now - self._read_at >= self._every:
                self._figures = host_figures(os.cpu_count() or 1, host_memory_mb(), self.instance_root)
                self._read_at = now
            return self._figures


def host_figures(cores: int, memory_mb: int, instance_root: Path) -> Resources:
    """The host as the hypervisor reports it; disk is the free space under INSTANCE_PATH."""
    instance_root.mkdir(parents=True, exist_ok=True)
    return Resources(cores=cores, memory_mb=memory_mb,
                     disk_gb=int(shutil.disk_usage(instance_root).free // GIB))


def maximum(limits: Limits, host: Resources) -> Resources:
    return Resources(cores=limits.cores if limits.cores is not None else host.cores,
                     memory_mb=limits.memory_mb if limits.memory_mb is not None else host.memory_mb,
                     disk_gb=limits.disk_gb if limits.disk_gb is not None else host.disk_gb)


def booked(vm_types: Iterable[VmType]) -> Resources:
    total = Resources(cores=0, memory_mb=0, disk_gb=0)
    for vm in vm_types:
        total = total.plus(vm.needs())
    return total


@functools.lru_cache(maxsize=256)
def _needs(cores: int, memory_mb: int, disk_gb: int) -> tuple[int, int, int]:
    need = VmType(name="-", cpu=cores, memory_mb=memory_mb, disk_gb=disk_gb).needs()
    return need.cores, need.memory_mb, need.disk_gb


def booked_sizes(sizes: Iterable[tuple[int, int, int]]) -> Resources:
    """`booked` from the (cores, memory_mb, disk_gb) of live instances as the database keeps
    them: a describe of 40,000 instances sums integers instead of building 40,000 models."""
    cores = memory = disk = 0
    for size in sizes:
        c, m, d = _needs(*size)
        cores, memory, disk = cores + c, memory + m, disk + d
    return Resources(cores=cores, memory_mb=memory, disk_gb=disk)
