"""EBS volumes attached to a running instance through the NC's signed internal API
(services/messages/attach.py), on each hypervisor driver: the disk in the domain definition
with the volume id as its serial, the attachment in the instance's reports, idempotent
calls, refused devices that change nothing, and terminate detaching."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import select

from nc.hypervisor import HypervisorError
from nc.models import AttachmentRecord
from services.internal import InternalCallError
from nc.ceph_secret import secret_uuid
from services.messages.attach import (ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk, DiskAttachment,
                                      DiskSource)
from services.messages.node import InstanceReport
from tests.nc.conftest import Driver, Node, run_request, start_node
from tests.support.waiting import wait_for


def local_source(tmp_path: Path, volume_id: str, size: int = 1 << 30) -> DiskSource:
    path = tmp_path / "volumes" / volume_id
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as volume:
        volume.truncate(size)       # sparse, as the SC makes them
    return DiskSource(driver="local", path=str(path), uri=path.as_uri())


def nbd_source(volume_id: str) -> DiskSource:
    return DiskSource(driver="nbd", host="10.0.0.7", port=10809, export_name=volume_id,
                      uri=f"nbd://10.0.0.7:10809/{volume_id}")


def attach(node: Node, instance_id: str, volume_id: str, device: str, source: DiskSource) -> DiskAttachment:
    return node.call("POST", ATTACH_ROUTE.format(instance_id=instance_id),
                     AttachDisk(volume_id=volume_id, device=device, source=source), DiskAttachment)


def detach(node: Node, instance_id: str, volume_id: str, force: bool = False) -> DiskAttachment:
    return node.call("POST", DETACH_ROUTE.format(instance_id=instance_id, volume_id=volume_id),
                     DetachDisk(force=force), DiskAttachment)


def refusal(node: Node, instance_id: str, volume_id: str, device: str, source: DiskSource) -> InternalCallError:
    with pytest.raises(InternalCallError) as caught:
        attach(node, instance_id, volume_id, device, source)
    return caught.value


def running_instance(node: Node) -> str:
    request = run_request()
    node.run(request)
    node.wait_state(request.instance_id, "running")
    return request.instance_id


def volume_disks(node: Node, instance_id: str) -> dict[str, ET.Element]:
    """The domain definition's disks that carry a serial, by serial."""
    domain = ET.fromstring(node.runtime.hypervisor.domain_xml(instance_id))
    return {disk.findtext("serial") or "": disk for disk in domain.findall("./devices/disk")
            if disk.find("serial") is not None}


def attachment_rows(node: Node) -> list[tuple[str, str, str]]:
    with node.process.db.session() as session:
        return [(r.instance_id, r.volume_id, r.state) for r in session.scalars(select(AttachmentRecord))]


def test_a_local_volume_attaches_to_a_running_instance_and_detaches(node: Node, tmp_path: Path) -> None:
    instance_id = running_instance(node)
    source = local_source(tmp_path, "vol-11111111")

    attached = attach(node, instance_id, "vol-11111111", "/dev/sdc", source)
    assert (attached.state, attached.target, attached.device) == ("attached", "sdc", "/dev/sdc")

    disk = volume_disks(node, instance_id)["vol-11111111"]
    assert disk.get("type") == "file" and disk.get("device") == "disk"
    assert disk.find("source").get("file") == source.path  # type: ignore[union-attr]
    assert disk.find("target").attrib == {"dev": "sdc", "bus": "scsi"}  # type: ignore[union-attr]
    # Its SCSI unit follows the instance's own three disks (units 0-2) instead of sharing one.
    units = [a.get("unit") for a in ET.fromstring(node.runtime.hypervisor.domain_xml(instance_id))
             .findall("./devices/disk/address")]
    assert sorted(units) == ["0", "1", "2", "3"]

    report = node.instance(instance_id)
    assert report.state == "running"
    assert [(v.volume_id, v.state, v.device) for v in report.volumes] == [("vol-11111111", "attached", "/dev/sdc")]

    # The same attach again (a retry) answers the same and adds no second disk.
    assert attach(node, instance_id, "vol-11111111", "/dev/sdc", source) == attached
    assert list(volume_disks(node, instance_id)) == ["vol-11111111"]

    detached = detach(node, instance_id, "vol-11111111")
    assert (detached.volume_id, detached.state) == ("vol-11111111", "detached")
    assert volume_disks(node, instance_id) == {}
    assert node.instance(instance_id).volumes == []
    assert attachment_rows(node) == []
    # Detaching what is no longer attached answers "detached" and changes nothing.
    assert detach(node, instance_id, "vol-11111111").state == "detached"
    # The device is free again.
    assert attach(node, instance_id, "vol-22222222", "/dev/sdc", local_source(tmp_path, "vol-22222222")).state == "attached"


def test_an_nbd_volume_becomes_a_network_disk_on_the_bus_its_name_says(node: Node) -> None:
    instance_id = running_instance(node)
    attach(node, instance_id, "vol-33333333", "/dev/vdb", nbd_source("vol-33333333"))
    attach(node, instance_id, "vol-44444444", "xvdf", nbd_source("vol-44444444"))

    disks = volume_disks(node, instance_id)
    virtio = disks["vol-33333333"]
    assert virtio.get("type") == "network"
    source = virtio.find("source")
    assert source is not None and source.attrib == {"protocol": "nbd", "name": "vol-33333333"}
    host = source.find("host")
    assert host is not None and host.attrib == {"name": "10.0.0.7", "port": "10809"}
    assert virtio.find("target").attrib == {"dev": "vdb", "bus": "virtio"}  # type: ignore[union-attr]
    assert virtio.find("address") is None           # virtio disks get their own PCI slot
    # xvdf is how EC2 users name a disk; the guest sees it on the SCSI bus as sdf.
    assert disks["vol-44444444"].find("target").attrib == {"dev": "sdf", "bus": "scsi"}  # type: ignore[union-attr]
    assert {v.target for v in node.instance(instance_id).volumes} == {"vdb", "sdf"}


def test_an_rbd_volume_is_a_network_disk_with_the_ceph_user_and_a_secret_not_the_key(node: Node) -> None:
    instance_id = running_instance(node)
    source = DiskSource(driver="rbd", host="10.0.0.8", port=6789, export_name="rbd/vol-77777777",
                        user="eucasim", uri="rbd://10.0.0.8:6789/rbd/vol-77777777")
    attach(node, instance_id, "vol-77777777", "/dev/sdg", source)

    disk = volume_disks(node, instance_id)["vol-77777777"]
    assert disk.get("type") == "network"
    assert disk.find("source").attrib == {"protocol": "rbd", "name": "rbd/vol-77777777"}  # type: ignore[union-attr]
    assert disk.find("source/host").attrib == {"name": "10.0.0.8", "port": "6789"}  # type: ignore[union-attr]
    auth = disk.find("auth")
    assert auth is not None and auth.get("username") == "eucasim"
    # libvirt's test driver has no secrets; the disk still names the one a real node defines.
    assert auth.find("secret").attrib == {"type": "ceph", "uuid": secret_uuid("eucasim")}  # type: ignore[union-attr]
    assert secret_uuid("eucasim") != secret_uuid("admin")

    nameless = source.model_copy(update={"user": None})
    refused = refusal(node, instance_id, "vol-88888888", "/dev/sdh", nameless)
    assert "Ceph user" in str(refused.detail)
    assert "vol-88888888" not in volume_disks(node, instance_id)
    assert detach(node, instance_id, "vol-77777777").state == "detached"
    assert "vol-77777777" not in volume_disks(node, instance_id)


def test_a_device_the_instance_uses_is_refused_and_nothing_changes(node: Node, tmp_path: Path) -> None:
    instance_id = running_instance(node)
    attach(node, instance_id, "vol-55555555", "/dev/sdc", local_source(tmp_path, "vol-55555555"))
    before_xml = node.runtime.hypervisor.domain_xml(instance_id)
    before_report = node.instance(instance_id)
    other = local_source(tmp_path, "vol-66666666")

    # Another volume's device (under either spelling), the root disk and a partition of it.
    for device in ("/dev/sdc", "xvdc", "/dev/sda1", "/dev/sda"):
        refused = refusal(node, instance_id, "vol-66666666", device, other)
        assert refused.status == 409, device
        assert refused.detail["code"] == "InvalidParameterValue", refused.detail
        assert device in refused.detail["message"]

    bad = refusal(node, instance_id, "vol-66666666", "/dev/floppy", other)
    assert bad.status == 400 and bad.detail["code"] == "InvalidParameterValue"
    unknown = refusal(node, "i-0badbad0", "vol-66666666", "/dev/sdd", other)
    assert unknown.status == 404 and unknown.detail["code"] == "InvalidInstanceID.NotFound"

    assert node.runtime.hypervisor.domain_xml(instance_id) == before_xml
    assert node.instance(instance_id).volumes == before_report.volumes
    assert attachment_rows(node) == [(instance_id, "vol-55555555", "attached")]


def test_an_attach_the_hypervisor_refuses_leaves_no_disk_and_no_record(node: Node) -> None:
    instance_id = running_instance(node)
    before = node.runtime.hypervisor.domain_xml(instance_id)
    broken = DiskSource(driver="local", path="", uri="file:///")
    refused = refusal(node, instance_id, "vol-77777777", "/dev/sdc", broken)
    assert refused.status == 502
    assert node.runtime.hypervisor.domain_xml(instance_id) == before
    assert node.instance(instance_id).volumes == []
    assert attachment_rows(node) == []


def test_terminating_an_instance_detaches_its_volumes(node: Node, tmp_path: Path) -> None:
    instance_id = running_instance(node)
    source = local_source(tmp_path, "vol-88888888")
    attach(node, instance_id, "vol-88888888", "/dev/sdc", source)
    node.call("POST", f"/internal/instances/{instance_id}/terminate", response=InstanceReport)

    final = node.wait_state(instance_id, "terminated")
    assert final.volumes == []
    assert attachment_rows(node) == []
    assert Path(source.path or "").exists()         # the volume outlives its instance
    # A terminated instance takes no volume.
    refused = refusal(node, instance_id, "vol-88888888", "/dev/sdc", source)
    assert refused.status == 409 and refused.detail["code"] == "IncorrectState"


def test_a_domain_defined_again_after_a_host_restart_keeps_its_volumes(tmp_path: Path, driver: Driver) -> None:
    home = tmp_path / "restarts"
    with start_node(home, driver) as node:
        instance_id = running_instance(node)
        attach(node, instance_id, "vol-99999999", "/dev/sdc", local_source(tmp_path, "vol-99999999"))
    # A private hypervisor forgets its domains when the NC closes it: the next NC finds the
    # instance's domain gone (a host reboot) and defines it again, with the volume's disk.
    with start_node(home, driver) as node:
        def redefined() -> bool:
            try:
                return "vol-99999999" in volume_disks(node, instance_id)
            except HypervisorError:     # not defined again yet
                return False
        wait_for(redefined, 15, "the domain defined again with its volume")
        assert node.wait_state(instance_id, "running").volumes[0].volume_id == "vol-99999999"
