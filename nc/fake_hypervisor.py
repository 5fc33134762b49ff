"""An in-memory hypervisor: the same Protocol as LibvirtHypervisor and the same contract
(tests/nc/test_hypervisor_contract.py), at the cost of a dict entry per domain, so one NC
process can simulate thousands of nodes (HYPERVISOR_URI=fake://).

  fake://          a private host for one node: it forgets its domains when closed, as the
                   libvirt test driver forgets them when its process ends (a host reboot)
  fake:///<name>   a host shared within this process by every hypervisor opened on it, alive
                   while one of them is open (as test:///default is while a connection is)

Like libvirt, defining a name that exists is refused, undefining a running domain leaves it
running until it is destroyed, and a domain's console is the file its spec names. A running
domain whose definition has the guest agent's channel has an agent (as a cloud image with
qemu-guest-agent does): it freezes one file system per disk, refuses a second freeze as
QEMU's agent does, and forgets the freeze when the domain stops."""

from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass

from nc.domain_xml import (DomainSpec, VolumeDisk, build_domain_xml, has_guest_agent, source_problem,
                           with_volume, without_volume)
from nc.faults import FAULTS
from nc.hypervisor import AgentUnavailable, DomainState, HostInfo, HypervisorError, OurDomain, tail_of
from nc.resources import host_memory_mb
from services.ids import INSTANCE_ID


@dataclass
class _Domain:
    spec: DomainSpec
    xml: str
    running: bool = False
    persistent: bool = True
    frozen: int = 0         # file systems the modelled guest agent holds frozen


class _Host:
    """The domains of one fake host; every call holds its lock for a few dict operations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.domains: dict[str, _Domain] = {}
        self.users = 0


_SHARED: dict[str, _Host] = {}
_SHARED_LOCK = threading.Lock()


def _attach(uri: str) -> _Host:
    name = uri[len("fake:"):].strip("/")
    if not name:
        host = _Host()
        host.users = 1
        return host
    with _SHARED_LOCK:
        host = _SHARED.setdefault(name, _Host())
        host.users += 1
        return host


def _detach(uri: str, host: _Host) -> None:
    name = uri[len("fake:"):].strip("/")
    with _SHARED_LOCK:
        host.users -= 1
        if name and host.users == 0 and _SHARED.get(name) is host:
            del _SHARED[name]


class FakeHypervisor:
    def __init__(self, uri: str, node_id: str) -> None:
        self.uri = uri
        self.simulated = True
        self.domain_type = "test"
        self.node_id = node_id
        self._host = _attach(uri)
        self._closed = False

    def _require(self, name: str) -> _Domain:
        domain = self._host.domains.get(name)
        if domain is None:
            raise HypervisorError(f"fake: no domain named {name}")
        return domain

    def host_info(self) -> HostInfo:
        return HostInfo(cores=os.cpu_count() or 1, memory_mb=host_memory_mb(),
                        model=platform.machine() or "x86_64")

    def define(self, spec: DomainSpec) -> str:
        FAULTS.delay(self.node_id)
        xml = build_domain_xml(spec)
        with self._host.lock:
            if spec.name in self._host.domains:
                raise HypervisorError(f"fake: define {spec.name}: domain '{spec.name}' already exists")
            self._host.domains[spec.name] = _Domain(spec, xml)
        return xml

    def start(self, name: str) -> None:
        FAULTS.delay(self.node_id)
        with self._host.lock:
            self._require(name).running = True

    def reboot(self, name: str) -> None:
        # A reboot of a running guest keeps it running; of a stopped one, starts it.
        self.start(name)

    def destroy(self, name: str) -> None:
        with self._host.lock:
            domain = self._host.domains.get(name)
            if domain is None:
                return
            domain.running = False
            domain.frozen = 0
            if not domain.persistent:
                del self._host.domains[name]

    def undefine(self, name: str) -> None:
        with self._host.lock:
            domain = self._host.domains.get(name)
            if domain is None:
                return
            if domain.running:
                domain.persistent = False   # libvirt: a running domain lives on, transient
            else:
                del self._host.domains[name]

    def list_ours(self) -> list[OurDomain]:
        with self._host.lock:
            return [OurDomain(name, "running" if d.running else "shutoff", dict(d.spec.metadata))
                    for name, d in self._host.domains.items()
                    if INSTANCE_ID.match(name) and d.spec.metadata.get("node") == self.node_id]

    def state(self, name: str) -> DomainState:
        with self._host.lock:
            domain = self._host.domains.get(name)
            if domain is None:
                return "absent"
            return "running" if domain.running else "shutoff"

    def domain_xml(self, name: str) -> str:
        with self._host.lock:
            return self._require(name).xml

    def attach_volume(self, name: str, volume: VolumeDisk) -> None:
        with self._host.lock:
            domain = self._require(name)
            problem = source_problem(volume.source)
            if problem is not None:
                raise HypervisorError(f"fake: attach {volume.volume_id} to {name}: {problem}")
            domain.xml = with_volume(domain.xml, volume)

    def detach_volume(self, name: str, volume_id: str) -> None:
        with self._host.lock:
            domain = self._require(name)
            domain.xml = without_volume(domain.xml, volume_id)

    def _agent_of(self, what: str, name: str) -> _Domain:
        domain = self._require(name)
        if not domain.running:
            raise AgentUnavailable(f"fake: {what} {name}: the domain is not running")
        if not has_guest_agent(domain.xml):
            raise AgentUnavailable(f"fake: {what} {name}: the domain has no guest agent channel")
        return domain

    def freeze_filesystems(self, name: str) -> int:
        with self._host.lock:
            domain = self._agent_of("freeze the file systems of", name)
            if domain.frozen:
                raise HypervisorError(f"fake: freeze {name}: the guest's file systems are frozen already")
            domain.frozen = domain.xml.count("<disk ")
            return domain.frozen

    def thaw_filesystems(self, name: str) -> int:
        with self._host.lock:
            domain = self._agent_of("thaw the file systems of", name)
            thawed, domain.frozen = domain.frozen, 0
            return thawed

    def frozen(self, name: str) -> int:
        """How many file systems the modelled agent holds frozen (for tests and the trace)."""
        with self._host.lock:
            return self._require(name).frozen

    def console_tail(self, name: str, limit: int = 65536) -> bytes:
        with self._host.lock:
            path = self._require(name).spec.console_log
        return tail_of(path, limit)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _detach(self.uri, self._host)
