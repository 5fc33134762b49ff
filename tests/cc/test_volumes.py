"""EBS attach and detach through a real CC in front of a real NC process, as the CLC asks
(services/messages/attach.py): the CC forwards the same body to the instance's node, passes
the NC's EC2 error codes on, and its view of the zone lists the instance's volumes as the NC
reports them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.internal import InternalCallError
from services.messages.attach import (ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk, DiskAttachment,
                                      DiskSource)
from services.messages.cluster import CC_TERMINATE_ROUTE, ClusterInstance
from services.messages.node import InstanceReport
from tests.cc.cc_process import wait_for
from tests.cc.zone import SMALL, Zone
from tests.support.nc_process import NcProcess


def _source(tmp_path: Path, volume_id: str) -> DiskSource:
    path = tmp_path / f"{volume_id}.img"
    with path.open("wb") as volume:
        volume.truncate(1 << 30)
    return DiskSource(driver="local", path=str(path), uri=path.as_uri())


def _attach(zone: Zone, instance_id: str, volume_id: str, device: str, source: DiskSource) -> DiskAttachment:
    return zone.call("POST", ATTACH_ROUTE.format(instance_id=instance_id),
                     AttachDisk(volume_id=volume_id, device=device, source=source), DiskAttachment)


def _seen(zone: Zone, instance_id: str, check: Callable[[ClusterInstance], bool], what: str) -> ClusterInstance:
    def found() -> ClusterInstance | None:
        item = next((i for i in zone.instances().instances if i.instance_id == instance_id), None)
        return item if item is not None and check(item) else None
    return wait_for(found, 20, f"{instance_id} {what} in the CC's view")


def test_attach_and_detach_go_through_the_cc_to_the_instance_node(
        zone_factory: Callable[..., tuple[Zone, NcProcess]], tmp_path: Path) -> None:
    zone, _nc = zone_factory()
    placed = zone.run(SMALL).placed[0]
    instance_id = placed.instance_id
    _seen(zone, instance_id, lambda i: i.state == "running", "running")
    source = _source(tmp_path, "vol-1c1c1c1c")

    attached = _attach(zone, instance_id, "vol-1c1c1c1c", "/dev/sdc", source)
    assert (attached.instance_id, attached.state, attached.target) == (instance_id, "attached", "sdc")
    seen = _seen(zone, instance_id, lambda i: bool(i.volumes), "with its volume")
    assert [(v.volume_id, v.device, v.state) for v in seen.volumes] == [("vol-1c1c1c1c", "/dev/sdc", "attached")]
    assert _attach(zone, instance_id, "vol-1c1c1c1c", "/dev/sdc", source) == attached     # idempotent

    # The NC's EC2 codes reach the CLC as they are.
    with pytest.raises(InternalCallError) as clash:
        _attach(zone, instance_id, "vol-2d2d2d2d", "/dev/sdc", _source(tmp_path, "vol-2d2d2d2d"))
    assert clash.value.status == 409 and clash.value.detail["code"] == "InvalidParameterValue"
    with pytest.raises(InternalCallError) as unknown:
        _attach(zone, "i-0000dead", "vol-2d2d2d2d", "/dev/sdd", source)
    assert unknown.value.status == 404 and unknown.value.detail["code"] == "InvalidInstanceID.NotFound"

    detached = zone.call("POST", DETACH_ROUTE.format(instance_id=instance_id, volume_id="vol-1c1c1c1c"),
                         DetachDisk(), DiskAttachment)
    assert detached.state == "detached"
    _seen(zone, instance_id, lambda i: not i.volumes, "without volumes")


def test_terminating_through_the_cc_detaches_the_volumes(
        zone_factory: Callable[..., tuple[Zone, NcProcess]], tmp_path: Path) -> None:
    zone, _nc = zone_factory()
    instance_id = zone.run(SMALL).placed[0].instance_id
    _seen(zone, instance_id, lambda i: i.state == "running", "running")
    _attach(zone, instance_id, "vol-3e3e3e3e", "/dev/sdf", _source(tmp_path, "vol-3e3e3e3e"))
    _seen(zone, instance_id, lambda i: bool(i.volumes), "with its volume")

    zone.call("POST", CC_TERMINATE_ROUTE.format(instance_id=instance_id), response=InstanceReport)
    final = _seen(zone, instance_id, lambda i: i.state == "terminated", "terminated")
    assert final.volumes == []
