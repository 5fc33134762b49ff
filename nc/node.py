"""One node, wired: its libvirt connection, database, instance store, image cache and
instance manager. A single-node NC process has one; a simulated multi-node process has N."""

from __future__ import annotations

import os
import platform
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from nc.hypervisor import LibvirtHypervisor
from nc.image_cache import ImageCache
from nc.instance_store import InstanceStore
from nc.instances import InstanceManager, Refused
from nc.journal import ConsoleJournal
from nc.launch import Launcher
from nc.reconcile import Summary, reconcile_at_start, watch
from nc.resources import Limits, host_figures, maximum
from services.db import Database
from services.messages.node import NodeResources, PowerState, Resources
from services.tracing import TraceRecorder

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic keeps its migration context in module globals: one upgrade at a time per process.
_UPGRADE_LOCK = threading.Lock()


@dataclass(frozen=True)
class NodeSettings:
    node_id: str
    hypervisor_uri: str
    domain_type: str
    database_url: str
    instance_root: Path         # INSTANCE_PATH (this node's part of it)
    cache_mb: int
    limits: Limits
    secret: str


def host_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 1024


def write_node_xml(path: Path) -> Path:
    """A private test-driver hypervisor shaped like this machine, so a simulated node's `host`
    figures are the real ones (MAX_* then overcommit them visibly)."""
    cores = os.cpu_count() or 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<node>\n"
        f"  <cpu><nodes>1</nodes><sockets>1</sockets><cores>{cores}</cores><threads>1</threads>"
        f"<active>{cores}</active><mhz>2000</mhz><model>{platform.machine() or 'x86_64'}</model></cpu>\n"
        f"  <memory>{host_memory_mb() * 1024}</memory>\n"
        "</node>\n")
    return path


class NodeRuntime:
    def __init__(self, settings: NodeSettings, recorder: TraceRecorder, executor: Executor) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.recorder = recorder
        self.db = Database(settings.database_url)
        self.hypervisor = LibvirtHypervisor(settings.hypervisor_uri, settings.domain_type, settings.node_id)
        self.store = InstanceStore(settings.instance_root)
        self.cache = ImageCache(settings.instance_root / "_cache", settings.cache_mb, secret=settings.secret)
        journal = ConsoleJournal(self.hypervisor.simulated, settings.node_id)
        self.manager: InstanceManager
        launcher = Launcher(settings.node_id, self.hypervisor, self.store, self.cache, journal, recorder,
                            in_use=lambda: self.manager.keys_in_use())
        self.manager = InstanceManager(settings.node_id, self.db, launcher, executor, recorder)

    def start(self) -> Summary:
        with _UPGRADE_LOCK:
            self.db.upgrade(MIGRATIONS)
        return reconcile_at_start(self.manager)

    def watch(self) -> list[str]:
        return watch(self.manager)

    def host(self) -> Resources:
        if self.hypervisor.simulated:
            # The test driver's own node (test:///default: 16 CPUs, 3 GB) is fiction; the host
            # of a simulated node is the machine simulating it.
            return host_figures(os.cpu_count() or 1, host_memory_mb(), self.settings.instance_root)
        info = self.hypervisor.host_info()
        return host_figures(info.cores, info.memory_mb, self.settings.instance_root)

    def capacity(self) -> Resources:
        """The node's maximum: MAX_CORES/MAX_MEM/MAX_DISK or the host's figures."""
        return maximum(self.settings.limits, self.host())

    def resources(self) -> NodeResources:
        host = self.host()
        top = maximum(self.settings.limits, host)
        return NodeResources(node_id=self.node_id, max=top, free=top.minus(self.manager.booked()),
                             host=host, power=self.manager.power, hypervisor=self.hypervisor.uri)

    def set_power(self, power: PowerState) -> NodeResources:
        """Simulated nodes only: a real host that sleeps cannot answer HTTP to be woken."""
        if not self.hypervisor.simulated:
            raise Refused("a real node sleeps and wakes through POWER_WAKE_COMMAND, not through its NC")
        self.manager.set_power(power)
        return self.resources()

    def close(self) -> None:
        self.hypervisor.close()
        self.db.engine.dispose()
