"""One node, wired: its hypervisor, instance store, image cache, booter, instance manager and
volume manager (EBS attachments).
A single-node NC process has one; a simulated multi-node process has N, sharing what
nc.process.NodeProcess gives them (database, launch threads, trace recorder, event pusher).

Everything a node creates on disk (its instance folder, its image cache) is created on first
use, so thousands of simulated nodes cost nothing until they run an instance."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from nc.node_network import NodeNetwork
from nc.booter import InstanceBooter
from nc.ceph_secret import key_source
from nc.hypervisor import open_hypervisor
from nc.image_cache import ImageCache
from nc.instance_store import InstanceStore
from nc.instances import InstanceManager, Refused
from nc.journal import ConsoleJournal
from nc.reconcile import Summary, reconcile_at_start, watch
from nc.resources import Limits, SimulatingMachine, host_figures, host_memory_mb, maximum
from nc.quiesce import Quiescer
from nc.volumes import VolumeManager
from services.db import Database
from services.messages.node import InstanceReport, NodeResources, PowerState, Resources
from services.tracing import TraceRecorder


@dataclass(frozen=True)
class NodeSettings:
    node_id: str
    prefix: str                 # "" in a single-node process, "/node-3" in a simulated one
    hypervisor_uri: str
    domain_type: str
    instance_root: Path         # INSTANCE_PATH (this node's part of it)
    cache_mb: int
    limits: Limits
    secret: str
    network: NodeNetwork | None = None   # builds bridges and VXLAN (VNET_DRIVER=linux)
    # Where this node finds the Ceph key of an RBD volume's user (nc/ceph_secret.py).
    ceph_keyring: Path | None = None
    ceph_conf: Path | None = None


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
    def __init__(self, settings: NodeSettings, db: Database, recorder: TraceRecorder, executor: Executor,
                 machine: SimulatingMachine, on_change: Callable[[str, InstanceReport], None],
                 on_power: Callable[[str], None] = lambda _prefix: None) -> None:
        self.settings = settings
        self._on_power = on_power       # the node's own figures changed (nc.changes)
        self.node_id = settings.node_id
        self.prefix = settings.prefix
        self.recorder = recorder
        self.machine = machine
        self._top: tuple[Resources, Resources] | None = None   # (host figures, maximum from them)
        self.hypervisor = open_hypervisor(settings.hypervisor_uri, settings.domain_type, settings.node_id,
                                          key_source(settings.ceph_keyring, settings.ceph_conf))
        # A simulated node (libvirt's test driver, the fake) has no guest that reads its disks,
        # and a qemu-img process per launch (20-60 ms here) was most of a launch's time on the
        # node and a fifth of RunInstances -> running, so its root disks are sparse copies of
        # the cached image. Nodes with real guests make the qcow2 overlays Eucalyptus makes.
        self.store = InstanceStore(settings.instance_root,
                                   use_qemu_img=None if not self.hypervisor.simulated else False,
                                   format_disks=not self.hypervisor.simulated,
                                   node=settings.node_id)
        self.cache = ImageCache(settings.instance_root / "_cache", settings.cache_mb, secret=settings.secret)
        journal = ConsoleJournal(self.hypervisor.simulated, settings.node_id)
        self.manager: InstanceManager
        self.booter = InstanceBooter(settings.node_id, self.hypervisor, self.store, self.cache, journal,
                                     recorder, in_use=lambda: self.manager.keys_in_use(),
                                     network=settings.network,
                                     volumes=lambda instance_id: self.manager.book.disks(instance_id))
        prefix = settings.prefix
        self.manager = InstanceManager(settings.node_id, prefix, db, self.booter, executor, recorder,
                                       on_change=lambda report: on_change(prefix, report))
        self.volumes = VolumeManager(self.manager, self.hypervisor, recorder)
        self.quiescer = Quiescer(self.manager, self.hypervisor, recorder)

    def reconcile(self) -> Summary:
        self.volumes.reconcile()
        return reconcile_at_start(self.manager, self.hypervisor)

    def watch(self) -> list[str]:
        return watch(self.manager, self.hypervisor, self.booter)

    def host(self) -> Resources:
        if self.hypervisor.simulated:
            # The test driver's own node (test:///default: 16 CPUs, 3 GB) is fiction; the host
            # of a simulated node is the machine simulating it.
            return self.machine.figures()
        info = self.hypervisor.host_info()
        return host_figures(info.cores, info.memory_mb, self.settings.instance_root)

    def capacity(self) -> Resources:
        """The node's maximum: MAX_CORES/MAX_MEM/MAX_DISK or the host's figures."""
        return maximum(self.settings.limits, self.host())

    def resources(self, booked: Resources | None = None) -> NodeResources:
        """The node's figures; `booked` when the caller already summed its live instances."""
        host = self.host()
        if self._top is None or self._top[0] is not host:
            self._top = (host, maximum(self.settings.limits, host))
        top = self._top[1]
        used = booked if booked is not None else self.manager.booked()
        return NodeResources(node_id=self.node_id, max=top, free=top.minus(used),
                             host=host, power=self.manager.power, hypervisor=self.hypervisor.uri)

    def set_power(self, power: PowerState) -> NodeResources:
        """Simulated nodes only: a real host that sleeps cannot answer HTTP to be woken."""
        if not self.hypervisor.simulated:
            raise Refused("a real node sleeps and wakes through POWER_WAKE_COMMAND, not through its NC")
        if self.manager.power != power:
            self.manager.set_power(power)
            self._on_power(self.prefix)
        return self.resources()

    def close(self) -> None:
        self.quiescer.close()
        self.hypervisor.close()
