"""What any Hypervisor must do, asked of each driver in turn (libvirt's test driver and the
in-memory fake): a new implementation passes this file before the NC uses it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nc.domain_xml import DomainSpec, VolumeDisk, console_path, disk_targets, instance_disks
from nc.hypervisor import AgentUnavailable, Hypervisor, HypervisorError
from services.messages.attach import DiskSource
from tests.nc.conftest import Driver

_names = itertools.count(0x0c0ffee0)


def _spec(tmp_path: Path, node_id: str, name: str | None = None) -> DomainSpec:
    name = name or f"i-{next(_names):08x}"
    folder = tmp_path / name
    return DomainSpec(name=name, domain_type="test", vcpus=1, memory_mb=128,
                      disks=instance_disks(folder / "root.img", "raw", folder / "ephemeral0.img",
                                           folder / "swap.img"),
                      console_log=folder / "console.log", mac="d0:0d:0c:0f:fe:e0", bridge="br0",
                      metadata={"node": node_id, "account": "123456789012"})


@pytest.fixture
def hypervisor(driver: Driver, tmp_path: Path) -> Iterator[Hypervisor]:
    hv = driver.open(driver.private_uri(tmp_path), "node-contract")
    yield hv
    for domain in hv.list_ours():
        hv.destroy(domain.name)
        hv.undefine(domain.name)
    hv.close()


def test_a_simulated_hypervisor_says_so(hypervisor: Hypervisor) -> None:
    assert hypervisor.simulated and hypervisor.domain_type == "test"
    info = hypervisor.host_info()
    assert info.cores >= 1 and info.memory_mb > 0 and info.model


def test_define_start_reboot_destroy_undefine(hypervisor: Hypervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "node-contract")
    xml = hypervisor.define(spec)
    assert f"<name>{spec.name}</name>" in xml
    assert hypervisor.state(spec.name) == "shutoff"
    assert console_path(hypervisor.domain_xml(spec.name)) == spec.console_log

    hypervisor.start(spec.name)
    hypervisor.start(spec.name)                     # starting a running domain changes nothing
    assert hypervisor.state(spec.name) == "running"
    hypervisor.reboot(spec.name)
    assert hypervisor.state(spec.name) == "running"

    hypervisor.destroy(spec.name)
    hypervisor.destroy(spec.name)                   # destroying a stopped one changes nothing
    assert hypervisor.state(spec.name) == "shutoff"
    hypervisor.reboot(spec.name)                    # a reboot of a stopped domain starts it
    assert hypervisor.state(spec.name) == "running"

    hypervisor.destroy(spec.name)
    hypervisor.undefine(spec.name)
    assert hypervisor.state(spec.name) == "absent"
    hypervisor.undefine(spec.name)                  # undefining what is gone changes nothing


def test_an_undefined_running_domain_runs_until_destroyed(hypervisor: Hypervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    hypervisor.start(spec.name)
    hypervisor.undefine(spec.name)
    assert hypervisor.state(spec.name) == "running"
    hypervisor.destroy(spec.name)
    assert hypervisor.state(spec.name) == "absent"


def test_what_does_not_exist_is_an_error_or_absent(hypervisor: Hypervisor, tmp_path: Path) -> None:
    assert hypervisor.state("i-00000bad") == "absent"
    for call in (hypervisor.start, hypervisor.reboot, hypervisor.domain_xml, hypervisor.console_tail):
        with pytest.raises(HypervisorError):
            call("i-00000bad")
    hypervisor.destroy("i-00000bad")
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    with pytest.raises(HypervisorError):
        hypervisor.define(spec)                     # a name is defined once


def test_the_console_is_the_file_the_spec_names(hypervisor: Hypervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    assert hypervisor.console_tail(spec.name) == b""
    spec.console_log.parent.mkdir(parents=True, exist_ok=True)
    spec.console_log.write_bytes(b"boot\n" * 100)
    assert hypervisor.console_tail(spec.name, limit=10) == b"boot\nboot\n"


def test_only_our_nodes_instance_domains_are_listed(driver: Driver, tmp_path: Path) -> None:
    mine, theirs = driver.open(driver.shared_uri, "node-mine"), driver.open(driver.shared_uri, "node-theirs")
    ours, other_node, not_an_instance = (_spec(tmp_path, "node-mine"), _spec(tmp_path, "node-theirs"),
                                         _spec(tmp_path, "node-mine", name="manual-vm"))
    try:
        mine.define(ours)
        mine.start(ours.name)
        theirs.define(other_node)
        mine.define(not_an_instance)
        listed = mine.list_ours()
        assert [(d.name, d.state) for d in listed] == [(ours.name, "running")]
        assert listed[0].metadata["account"] == "123456789012"
        assert [d.name for d in theirs.list_ours()] == [other_node.name]
        # Both see the whole host, though: the shared host is one hypervisor.
        assert theirs.state(ours.name) == "running"
    finally:
        for spec, hv in ((ours, mine), (other_node, theirs), (not_an_instance, mine)):
            hv.destroy(spec.name)
            hv.undefine(spec.name)
        mine.close()
        theirs.close()


def test_a_private_host_forgets_its_domains_when_closed(driver: Driver, tmp_path: Path) -> None:
    uri = driver.private_uri(tmp_path)
    first = driver.open(uri, "node-reboot")
    spec = _spec(tmp_path, "node-reboot")
    first.define(spec)
    first.start(spec.name)
    first.close()
    again = driver.open(uri, "node-reboot")         # as after a host reboot
    try:
        assert again.state(spec.name) == "absent" and again.list_ours() == []
    finally:
        again.close()


def _volume(tmp_path: Path, volume_id: str, target: str) -> VolumeDisk:
    path = tmp_path / f"{volume_id}.img"
    return VolumeDisk(volume_id, target, DiskSource(driver="local", path=str(path), uri=path.as_uri()))


def test_a_volume_attaches_and_detaches_once_whatever_the_calls(hypervisor: Hypervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    hypervisor.start(spec.name)
    volume = _volume(tmp_path, "vol-0000aaaa", "sdc")

    hypervisor.attach_volume(spec.name, volume)
    hypervisor.attach_volume(spec.name, volume)       # already there: nothing changes
    targets = disk_targets(hypervisor.domain_xml(spec.name))
    assert targets == {"sda1": "", "sda2": "", "sda3": "", "sdc": "vol-0000aaaa"}
    assert hypervisor.state(spec.name) == "running"

    hypervisor.detach_volume(spec.name, "vol-0000aaaa")
    hypervisor.detach_volume(spec.name, "vol-0000aaaa")   # not there: nothing changes
    assert "vol-0000aaaa" not in disk_targets(hypervisor.domain_xml(spec.name)).values()


def test_a_refused_attach_leaves_the_definition_as_it_was(hypervisor: Hypervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    before = hypervisor.domain_xml(spec.name)
    broken = VolumeDisk("vol-0000bbbb", "sdd", DiskSource(driver="local", path="", uri="file:///"))
    with pytest.raises(HypervisorError):
        hypervisor.attach_volume(spec.name, broken)
    assert hypervisor.domain_xml(spec.name) == before
    with pytest.raises(HypervisorError):
        hypervisor.attach_volume("i-00000bad", _volume(tmp_path, "vol-0000cccc", "sde"))


def test_file_systems_freeze_only_where_a_guest_agent_answers(hypervisor: Hypervisor, driver: Driver,
                                                              tmp_path: Path) -> None:
    """The test driver runs no guest, so it has no agent (its own fsFreeze would pretend one);
    the fake models a guest agent in a running domain that has the agent's channel."""
    spec = _spec(tmp_path, "node-contract")
    hypervisor.define(spec)
    with pytest.raises(AgentUnavailable):             # not running: no guest, no agent
        hypervisor.freeze_filesystems(spec.name)
    hypervisor.start(spec.name)
    if driver.name != "fake":
        with pytest.raises(AgentUnavailable, match="runs no guest"):
            hypervisor.freeze_filesystems(spec.name)
        return
    assert hypervisor.freeze_filesystems(spec.name) == 3          # one per disk of the domain
    with pytest.raises(HypervisorError, match="frozen already"):  # as QEMU's agent refuses
        hypervisor.freeze_filesystems(spec.name)
    assert hypervisor.thaw_filesystems(spec.name) == 3
    assert hypervisor.thaw_filesystems(spec.name) == 0            # nothing frozen: nothing thawed
    bare = replace(_spec(tmp_path, "node-contract"), guest_agent=False)
    hypervisor.define(bare)
    hypervisor.start(bare.name)
    with pytest.raises(AgentUnavailable, match="no guest agent channel"):
        hypervisor.freeze_filesystems(bare.name)
