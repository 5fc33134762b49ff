"""What one node offers: MAX_CORES / MAX_MEM / MAX_DISK where set (any may exceed the host:
overcommit), else the host's own figures; free = max − what non-terminated instances booked
(disk includes each instance's swap). The host's real figures are reported beside them so
overcommit is visible."""

from __future__ import annotations

import shutil
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
