"""The domain XML of an instance with kernel and ramdisk, defined on libvirt's test driver and
read back: Eucalyptus's disk layout, kernel command line, serial console file, NIC."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from nc.domain_xml import NAMESPACE, DomainSpec, build_domain_xml, instance_disks
from nc.libvirt_hypervisor import LibvirtHypervisor
from services.messages.node import instance_mac


@pytest.fixture
def hypervisor() -> Iterator[LibvirtHypervisor]:
    hv = LibvirtHypervisor("test:///default", "kvm", node_id="node-domain-xml")
    yield hv
    for name in ("i-0123abcd", "i-4567cdef"):
        hv.destroy(name)
        hv.undefine(name)
    hv.close()


def _spec(tmp_path: Path, name: str, with_kernel: bool) -> DomainSpec:
    d = tmp_path / name
    return DomainSpec(
        name=name, domain_type="test", vcpus=2, memory_mb=512,
        disks=instance_disks(d / "root.qcow2", "qcow2", d / "ephemeral0.img", d / "swap.img"),
        console_log=d / "console.log", mac=instance_mac(name), bridge="eucabr10",
        kernel=d / "kernel" if with_kernel else None, ramdisk=d / "ramdisk" if with_kernel else None,
        cmdline="root=/dev/sda1 console=ttyS0" if with_kernel else None,
        metadata={"node": "node-domain-xml", "account": "123456789012"})


def test_kernel_ramdisk_domain_round_trips_through_libvirt(tmp_path: Path, hypervisor: LibvirtHypervisor) -> None:
    spec = _spec(tmp_path, "i-0123abcd", with_kernel=True)
    hypervisor.define(spec)
    hypervisor.start(spec.name)
    back = ET.fromstring(hypervisor.domain_xml(spec.name))
    d = tmp_path / spec.name

    assert back.get("type") == "test" and back.findtext("name") == "i-0123abcd"
    assert back.findtext("vcpu") == "2"
    assert int(back.findtext("memory") or 0) == 512 * 1024 and back.find("memory").get("unit") == "KiB"
    assert back.findtext("os/kernel") == str(d / "kernel")
    assert back.findtext("os/initrd") == str(d / "ramdisk")
    assert back.findtext("os/cmdline") == "root=/dev/sda1 console=ttyS0"

    disks = [(disk.find("target").get("dev"), disk.find("source").get("file"), disk.find("driver").get("type"))
             for disk in back.findall("devices/disk")]
    assert disks == [("sda1", str(d / "root.qcow2"), "qcow2"),
                     ("sda2", str(d / "ephemeral0.img"), "raw"),
                     ("sda3", str(d / "swap.img"), "raw")]
    units = [disk.find("address").get("unit") for disk in back.findall("devices/disk")]
    assert units == ["0", "1", "2"]

    assert back.find("devices/serial").get("type") == "file"
    assert back.find("devices/serial/source").get("path") == str(d / "console.log")
    nic = back.find("devices/interface")
    assert nic.get("type") == "bridge"
    assert nic.find("mac").get("address") == "d0:0d:01:23:ab:cd"
    assert nic.find("source").get("bridge") == "eucabr10"

    # Ours, recognisably: metadata in our namespace naming this node.
    ours = {d.name: d for d in hypervisor.list_ours()}
    assert ours["i-0123abcd"].state == "running"
    assert ours["i-0123abcd"].metadata["account"] == "123456789012"
    assert back.find(f"metadata/{{{NAMESPACE}}}instance") is not None


def test_image_without_kernel_boots_from_disk(tmp_path: Path, hypervisor: LibvirtHypervisor) -> None:
    spec = _spec(tmp_path, "i-4567cdef", with_kernel=False)
    hypervisor.define(spec)
    back = ET.fromstring(hypervisor.domain_xml(spec.name))
    assert back.find("os/kernel") is None and back.find("os/cmdline") is None
    assert back.find("os/boot").get("dev") == "hd"


def test_real_hypervisor_types_get_their_own_domain_type(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "i-89abcdef", with_kernel=True)
    kvm = ET.fromstring(build_domain_xml(DomainSpec(**{**spec.__dict__, "domain_type": "kvm"})))
    assert kvm.get("type") == "kvm" and kvm.find("features/acpi") is not None
    assert instance_mac("i-89ABCDEF") == "d0:0d:89:ab:cd:ef"


def test_a_real_domain_names_whole_disks_and_boots_without_a_nic_rom(tmp_path: Path) -> None:
    # libvirt's QEMU driver refuses partition targets (sda1); the test driver takes them.
    spec = _spec(tmp_path, "i-0123abcd", with_kernel=True)
    for kind, targets, rom in (("qemu", ["sda", "sdb", "sdc"], "no"), ("test", ["sda1", "sda2", "sda3"], None)):
        xml = ET.fromstring(build_domain_xml(DomainSpec(**{**spec.__dict__, "domain_type": kind})))
        assert [d.find("target").get("dev") for d in xml.findall("devices/disk")] == targets
        assert [d.find("address").get("unit") for d in xml.findall("devices/disk")] == ["0", "1", "2"]
        rom_element = xml.find("devices/interface/rom")
        assert (rom_element.get("enabled") if rom_element is not None else None) == rom


def test_an_ebs_root_takes_the_root_disks_place(tmp_path: Path, hypervisor: LibvirtHypervisor) -> None:
    """An EBS-backed instance boots from its volume: unit 0 is the volume's export (a file, or
    an nbd network disk), named by its serial, and no instance-store root file is read."""
    from nc.domain_xml import VolumeDisk
    from services.messages.attach import DiskSource

    spec = _spec(tmp_path, "i-4567cdef", with_kernel=False)
    for source, kind in ((DiskSource(driver="local", path="/srv/sc/vol-0a0b0c0d", uri="file:///srv/sc/vol-0a0b0c0d"), "file"),
                         (DiskSource(driver="nbd", host="10.0.0.5", port=10809, export_name="vol-0a0b0c0d",
                                     uri="nbd://10.0.0.5:10809/vol-0a0b0c0d"), "network")):
        root = VolumeDisk("vol-0a0b0c0d", "sda1", source)
        for domain_type, target in (("test", "sda1"), ("qemu", "sda")):
            xml = ET.fromstring(build_domain_xml(DomainSpec(**{**spec.__dict__, "domain_type": domain_type,
                                                               "root_volume": root})))
            first = xml.findall("devices/disk")[0]
            assert first.get("type") == kind and first.findtext("serial") == "vol-0a0b0c0d"
            assert (first.find("target").get("dev"), first.find("address").get("unit")) == (target, "0")
            assert str(spec.disks[0].path) not in build_domain_xml(
                DomainSpec(**{**spec.__dict__, "domain_type": domain_type, "root_volume": root}))
    # libvirt's test driver takes it as it is.
    local = VolumeDisk("vol-0a0b0c0d", "sda1", DiskSource(driver="local", path=str(tmp_path / "vol"),
                                                          uri=(tmp_path / "vol").as_uri()))
    hypervisor.define(DomainSpec(**{**spec.__dict__, "root_volume": local}))
    assert "vol-0a0b0c0d" in hypervisor.domain_xml("i-4567cdef")
