"""An instance's spec as libvirt domain XML, in the layout Eucalyptus gives its instances:
root `sda1`, ephemeral0 `sda2`, swap `sda3`, the kernel command line `root=/dev/sda1
console=ttyS0` when the image has its own kernel, a serial console written to `console.log`,
and one bridged NIC.

Pure functions over xml.etree: no libvirt here, so the layout can be tested on its own and the
same XML serves the test driver and QEMU/KVM."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# Our own metadata namespace marks the domains eucasim created; any other domain on the
# hypervisor (the test driver's `test`, an operator's VM) is left alone and not counted.
NAMESPACE = "https://eucasim.dev/xmlns/nc/1"
NS_PREFIX = "eucasim"
KERNEL_CMDLINE = "root=/dev/sda1 console=ttyS0"

ET.register_namespace(NS_PREFIX, NAMESPACE)


@dataclass(frozen=True)
class DiskSpec:
    dev: str            # sda1, sda2, sda3
    path: Path
    format: str         # qcow2 | raw
    role: str           # root | ephemeral0 | swap


@dataclass(frozen=True)
class DomainSpec:
    name: str                       # the instance id
    domain_type: str                # test | kvm | qemu
    vcpus: int
    memory_mb: int
    disks: tuple[DiskSpec, ...]
    console_log: Path
    mac: str
    bridge: str
    kernel: Path | None = None
    ramdisk: Path | None = None
    cmdline: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def instance_disks(root: Path, root_format: str, ephemeral: Path, swap: Path) -> tuple[DiskSpec, ...]:
    return (DiskSpec("sda1", root, root_format, "root"),
            DiskSpec("sda2", ephemeral, "raw", "ephemeral0"),
            DiskSpec("sda3", swap, "raw", "swap"))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _metadata(parent: ET.Element, values: dict[str, str]) -> None:
    holder = _sub(_sub(parent, "metadata"), f"{{{NAMESPACE}}}instance")
    for key, value in values.items():
        _sub(holder, f"{{{NAMESPACE}}}{key}", value)


def _os(parent: ET.Element, spec: DomainSpec) -> None:
    os_el = _sub(parent, "os")
    _sub(os_el, "type", "hvm")
    if spec.kernel is not None:
        _sub(os_el, "kernel", str(spec.kernel))
        if spec.ramdisk is not None:
            _sub(os_el, "initrd", str(spec.ramdisk))
        _sub(os_el, "cmdline", spec.cmdline or KERNEL_CMDLINE)
    else:
        _sub(os_el, "boot", dev="hd")


def _disks(devices: ET.Element, spec: DomainSpec) -> None:
    # Device names with a partition digit (sda1…) all map to the same SCSI unit when libvirt
    # derives addresses from the name, so each disk gets its unit explicitly.
    # Real gotcha: libvirt's QEMU driver refuses the partition names ("invalid disk target
    # 'sda1', partitions can't appear in disk targets"; only the test driver takes them), so a
    # real domain names the whole disk of each unit (sda, sdb, sdc). The guest sees those names
    # anyway; sda1/sda2/sda3 stay the layout's names (metadata's block-device-mapping).
    real = spec.domain_type in ("kvm", "qemu")
    _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for unit, disk in enumerate(spec.disks):
        element = _sub(devices, "disk", type="file", device="disk")
        _sub(element, "driver", name="qemu", type=disk.format)
        _sub(element, "source", file=str(disk.path))
        _sub(element, "target", dev=f"sd{'abcdefghijklmnop'[unit]}" if real else disk.dev, bus="scsi")
        _sub(element, "address", type="drive", controller="0", bus="0", target="0", unit=str(unit))


def _nic_and_console(devices: ET.Element, spec: DomainSpec) -> None:
    nic = _sub(devices, "interface", type="bridge")
    _sub(nic, "mac", address=spec.mac)
    _sub(nic, "source", bridge=spec.bridge)
    _sub(nic, "model", type="virtio")
    if spec.domain_type in ("kvm", "qemu"):
        _sub(nic, "rom", enabled="no")  # no iPXE ROM: the kernel boots directly (REAL-LAB.md 11)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log))
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=str(spec.console_log))
    _sub(console, "target", type="serial", port="0")


def build_domain_xml(spec: DomainSpec) -> str:
    domain = ET.Element("domain", type=spec.domain_type)
    _sub(domain, "name", spec.name)
    if spec.metadata:
        _metadata(domain, spec.metadata)
    _sub(domain, "memory", str(spec.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus))
    _os(domain, spec)
    if spec.domain_type in ("kvm", "qemu"):
        features = _sub(domain, "features")
        _sub(features, "acpi")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    _disks(devices, spec)
    _nic_and_console(devices, spec)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def parse_metadata(element_xml: str) -> dict[str, str]:
    """Our metadata element as libvirt hands it back (namespace stripped or not) -> dict."""
    root = ET.fromstring(element_xml)
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in root}


def console_path(domain_xml: str) -> Path | None:
    """Where a defined domain writes its serial console, read from its XML."""
    source = ET.fromstring(domain_xml).find("./devices/serial/source")
    path = source.get("path") if source is not None else None
    return Path(path) if path else None
