"""An instance's spec as libvirt domain XML, in the layout Eucalyptus gives its instances:
root `sda1`, ephemeral0 `sda2`, swap `sda3`, the kernel command line `root=/dev/sda1
console=ttyS0` when the image has its own kernel, a serial console written to `console.log`,
and one bridged NIC; EBS volumes follow as further disks whose `<serial>` is the volume id, so
a guest finds a volume under /dev/disk/by-id whatever name its kernel gave the disk.

Pure functions over xml.etree: no libvirt here, so the layout can be tested on its own and the
same XML serves the test driver and QEMU/KVM."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from nc.ceph_secret import secret_uuid
from services.messages.attach import DiskSource

# Our own metadata namespace marks the domains eucasim created; any other domain on the
# hypervisor (the test driver's `test`, an operator's VM) is left alone and not counted.
NAMESPACE = "https://eucasim.dev/xmlns/nc/1"
NS_PREFIX = "eucasim"
KERNEL_CMDLINE = "root=/dev/sda1 console=ttyS0"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

ET.register_namespace(NS_PREFIX, NAMESPACE)


@dataclass(frozen=True)
class DiskSpec:
    dev: str            # sda1, sda2, sda3
    path: Path
    format: str         # qcow2 | raw
    role: str           # root | ephemeral0 | swap


@dataclass(frozen=True)
class VolumeDisk:
    """An attached EBS volume as the domain sees it."""
    volume_id: str
    target: str         # the libvirt target: sdc (SCSI bus) or vdc (virtio bus)
    source: DiskSource

    @property
    def bus(self) -> str:
        return "virtio" if self.target.startswith("vd") else "scsi"


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
    volumes: tuple[VolumeDisk, ...] = ()
    guest_agent: bool = True        # a channel for the QEMU guest agent (fsFreeze/fsThaw)
    # An EBS-backed instance boots from a volume: it takes the root disk's place (sda1, unit
    # 0) and no instance-store root file exists.
    root_volume: VolumeDisk | None = None


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
        if disk.role == "root" and spec.root_volume is not None:
            root = VolumeDisk(spec.root_volume.volume_id, "sda" if real else disk.dev,
                              spec.root_volume.source)
            devices.append(volume_element(root, unit))
            continue
        element = _sub(devices, "disk", type="file", device="disk")
        _sub(element, "driver", name="qemu", type=disk.format)
        _sub(element, "source", file=str(disk.path))
        _sub(element, "target", dev=f"sd{'abcdefghijklmnop'[unit]}" if real else disk.dev, bus="scsi")
        _sub(element, "address", type="drive", controller="0", bus="0", target="0", unit=str(unit))
    for volume in spec.volumes:
        devices.append(volume_element(volume, _free_unit(devices)))


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
    if spec.guest_agent:
        # The QEMU guest agent's channel (libvirt picks the socket's path): what fsFreeze and
        # fsThaw talk to, so a snapshot of an attached volume can be application-consistent.
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)


def has_guest_agent(xml: str) -> bool:
    """Whether a domain definition has the guest agent's channel."""
    return any(target.get("name") == GUEST_AGENT_CHANNEL
               for target in ET.fromstring(xml).iterfind("./devices/channel/target"))


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


# ----- EBS volumes ---------------------------------------------------------------------------

_DEVICE = re.compile(r"(?:/dev/)?(sd|xvd|hd|vd)([a-z]{1,2})([0-9]{0,2})")


class BadDevice(ValueError):
    """A device name no disk can have."""


def volume_target(device: str) -> str:
    """The libvirt target for a device as the user named it: /dev/sdc, sdc, xvdc and hdc all
    become `sdc` on the SCSI bus the instance's own disks use; vdc stays on the virtio bus."""
    match = _DEVICE.fullmatch(device.strip())
    if match is None:
        raise BadDevice(f"{device!r} is not a valid device name (expected /dev/sd[b-z] or /dev/xvd[b-z])")
    bus, letters, digits = match.groups()
    return ("vd" if bus == "vd" else "sd") + letters + digits


def disk_base(target: str) -> str:
    """The whole disk a target names: sda1 -> sda (a partition of the root disk is that disk)."""
    return target.rstrip("0123456789")


def source_problem(source: DiskSource) -> str | None:
    """What libvirt would refuse in a volume's source (the fake driver refuses the same)."""
    if source.driver == "local" and not source.path:
        return "missing source information for device (a local volume needs its path)"
    if source.driver != "local" and not (source.host and source.port and source.export_name):
        return f"an {source.driver} volume needs its host, port and export name"
    if source.driver == "rbd" and not source.user:
        return "an rbd volume needs the Ceph user to connect as"
    return None


def ceph_secrets(domain_xml: str) -> dict[str, str]:
    """{secret uuid: Ceph user} of every RBD disk's `<auth>` in a domain or a `<disk>`."""
    root = ET.fromstring(domain_xml)
    found: dict[str, str] = {}
    for auth in root.iter("auth"):
        secret = auth.find("secret")
        if secret is not None and secret.get("type") == "ceph" and secret.get("uuid"):
            found[secret.get("uuid", "")] = auth.get("username", "")
    return found


def volume_element(volume: VolumeDisk, unit: int | None) -> ET.Element:
    """`<disk>` for a volume: a file for the `local` driver, a network disk for `nbd`/`rbd`;
    `unit` places a SCSI disk explicitly (libvirt would derive it from the name, on top of
    the instance's own disks, which have explicit units)."""
    source = volume.source
    if source.driver == "local":
        element = ET.Element("disk", type="file", device="disk")
        _sub(element, "driver", name="qemu", type="raw", cache="none")
        _sub(element, "source", file=source.path or "")
    else:
        element = ET.Element("disk", type="network", device="disk")
        _sub(element, "driver", name="qemu", type="raw", cache="none")
        if source.driver == "rbd":
            # QEMU's librbd connects as the Ceph user with the key libvirt holds as a secret
            # (nc/ceph_secret.py): the key itself never appears in the domain.
            auth = _sub(element, "auth", username=source.user or "")
            _sub(auth, "secret", type="ceph", uuid=secret_uuid(source.user or ""))
        src = _sub(element, "source", protocol=source.driver, name=source.export_name or "")
        _sub(src, "host", name=source.host or "", port=str(source.port or ""))
    _sub(element, "target", dev=volume.target, bus=volume.bus)
    _sub(element, "serial", volume.volume_id)
    if volume.bus == "scsi" and unit is not None:
        _sub(element, "address", type="drive", controller="0", bus="0", target="0", unit=str(unit))
    return element


def _free_unit(devices: ET.Element) -> int:
    used = {int(a.get("unit", "0")) for a in devices.findall("./disk/address[@type='drive']")
            if a.get("controller", "0") == "0"}
    return next(unit for unit in range(len(used) + 1) if unit not in used)


def _volume_of(devices: ET.Element, volume_id: str) -> ET.Element | None:
    return next((d for d in devices.findall("./disk") if (d.findtext("serial") or "") == volume_id), None)


def _devices(domain_xml: str) -> tuple[ET.Element, ET.Element]:
    root = ET.fromstring(domain_xml)
    devices = root.find("./devices")
    if devices is None:
        raise ValueError("domain XML without <devices>")
    return root, devices


def disk_targets(domain_xml: str) -> dict[str, str]:
    """Every disk of a domain: target -> serial ("" for the instance's own disks)."""
    _, devices = _devices(domain_xml)
    return {t.get("dev", ""): (d.findtext("serial") or "")
            for d in devices.findall("./disk") if (t := d.find("target")) is not None}


def volume_disk_xml(domain_xml: str, volume: VolumeDisk) -> str:
    """The `<disk>` to hot-plug into the domain `domain_xml` describes (with a free unit)."""
    _, devices = _devices(domain_xml)
    return ET.tostring(volume_element(volume, _free_unit(devices)), encoding="unicode")


def attached_disk_xml(domain_xml: str, volume_id: str) -> str | None:
    """The `<disk>` of `volume_id` in the domain, as it stands (what detach must name)."""
    _, devices = _devices(domain_xml)
    element = _volume_of(devices, volume_id)
    return ET.tostring(element, encoding="unicode") if element is not None else None


def with_volume(domain_xml: str, volume: VolumeDisk) -> str:
    """The domain with the volume's disk added after its other disks (unchanged if there)."""
    root, devices = _devices(domain_xml)
    if _volume_of(devices, volume.volume_id) is None:
        disks = devices.findall("./disk")
        where = list(devices).index(disks[-1]) + 1 if disks else 0
        devices.insert(where, volume_element(volume, _free_unit(devices)))
    return ET.tostring(root, encoding="unicode")


def without_volume(domain_xml: str, volume_id: str) -> str:
    root, devices = _devices(domain_xml)
    element = _volume_of(devices, volume_id)
    if element is not None:
        devices.remove(element)
    return ET.tostring(root, encoding="unicode")


def parse_metadata(element_xml: str) -> dict[str, str]:
    """Our metadata element as libvirt hands it back (namespace stripped or not) -> dict."""
    root = ET.fromstring(element_xml)
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in root}


def console_path(domain_xml: str) -> Path | None:
    """Where a defined domain writes its serial console, read from its XML."""
    source = ET.fromstring(domain_xml).find("./devices/serial/source")
    path = source.get("path") if source is not None else None
    return Path(path) if path else None
