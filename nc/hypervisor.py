"""The NC's one door to a hypervisor: a small Protocol, the types it speaks, and the factory
that picks an implementation from HYPERVISOR_URI:

  test:///…, qemu:///…   nc.libvirt_hypervisor.LibvirtHypervisor (libvirt's test driver in
                         simulated mode, QEMU/KVM in real mode)
  fake://, fake:///name  nc.fake_hypervisor.FakeHypervisor, in memory, for thousands of
                         simulated nodes in one process (Nova keeps its `fake` driver beside
                         its libvirt one for the same reason)

Both pass the same contract (tests/nc/test_hypervisor_contract.py). Only domains eucasim
created are ever touched or counted: their name is an instance id and they carry our metadata
naming this node; anything else on the hypervisor is invisible to the NC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from nc.domain_xml import DomainSpec, VolumeDisk

DomainState = Literal["running", "paused", "shutoff", "crashed", "other", "absent"]
FAKE_SCHEME = "fake:"


class HypervisorError(Exception):
    """A hypervisor call failed; the message says which call and why (libvirt's own words,
    prefixed `libvirt: `, for the libvirt driver)."""


class AgentUnavailable(HypervisorError):
    """The guest's file systems cannot be frozen: no guest agent answers (none configured or
    running in the guest, or a driver that runs no guest at all). Not a failure of the call:
    a snapshot without a freeze is crash-consistent."""


@dataclass(frozen=True)
class HostInfo:
    cores: int
    memory_mb: int
    model: str


@dataclass(frozen=True)
class OurDomain:
    name: str
    state: DomainState
    metadata: dict[str, str]


class Hypervisor(Protocol):
    uri: str
    simulated: bool         # no guest really runs: the NC writes the console itself
    domain_type: str

    def host_info(self) -> HostInfo: ...
    def define(self, spec: DomainSpec) -> str: ...
    def start(self, name: str) -> None: ...
    def reboot(self, name: str) -> None: ...
    def destroy(self, name: str) -> None: ...
    def undefine(self, name: str) -> None: ...
    def list_ours(self) -> list[OurDomain]: ...
    def state(self, name: str) -> DomainState: ...
    def domain_xml(self, name: str) -> str: ...   # the domain's persistent definition
    # An EBS volume's disk, found by its serial (the volume id): attaching one already there
    # and detaching one not there change nothing. Either the disk is in the definition after
    # the call, or (it raised) the definition is as it was.
    def attach_volume(self, name: str, volume: VolumeDisk) -> None: ...
    def detach_volume(self, name: str, volume_id: str) -> None: ...
    # The guest's file systems through its agent, around a snapshot: the number frozen or
    # thawed; AgentUnavailable when no agent answers. Thawing what is not frozen thaws 0.
    def freeze_filesystems(self, name: str) -> int: ...
    def thaw_filesystems(self, name: str) -> int: ...
    def console_tail(self, name: str, limit: int = 65536) -> bytes: ...
    def close(self) -> None: ...


def is_fake(uri: str) -> bool:
    return uri.startswith(FAKE_SCHEME)


def open_hypervisor(uri: str, domain_type: str, node_id: str,
                    ceph_keys: Callable[[str], str] | None = None) -> Hypervisor:
    """The implementation HYPERVISOR_URI names. libvirt is imported only when asked for, so a
    process of fake nodes needs no compiled libvirt."""
    if is_fake(uri):
        from nc.fake_hypervisor import FakeHypervisor
        return FakeHypervisor(uri, node_id)
    from nc.libvirt_hypervisor import LibvirtHypervisor
    return LibvirtHypervisor(uri, domain_type, node_id, ceph_keys)


def tail_of(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, 2)
            stream.seek(max(0, size - limit))
            return stream.read()
    except FileNotFoundError:
        return b""
