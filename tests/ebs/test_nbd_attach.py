"""With SC_EXPORT=nbd, for real: AttachVolume through the whole cloud has the SC serve the
volume with qemu-nbd on an address of this host other than loopback (what a node on another
host reaches), the NC's domain definition gets an `nbd` network disk pointing there, a client
reads the volume's bytes through it, and DetachVolume ends the export (qemu-nbd's port closes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ebs.support import (FAST, PATTERN, domain_disks, export_list, request_id, sc_info,
                               wait_attached, write_pattern)
from tests.ebs.test_volumes_boto3 import wait_state
from tests.sc.conftest import host_address
from tests.sc.test_exports import listening, read_through_nbd
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

MIB = 1024 * 1024

@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("ebs-nbd"), nodes=1, SC_EXPORT="nbd",
                       SC_NBD_ADDRESS=host_address(), SC_NBD_PORTS="10870-10889") as c:
        yield c


def test_an_attached_volume_is_served_over_nbd_until_detached(cloud: Cloud, tmp_path: Path) -> None:
    ec2 = cloud.ec2()
    instance_id = ec2.run_instances(ImageId=cloud.register_image(), MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    volume_id = ec2.create_volume(AvailabilityZone=cloud.config.zones[0], Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    write_pattern(Path(sc_info(cloud, volume_id).path), 300 * MIB)

    answer = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdc")
    wait_attached(ec2, volume_id)
    [export] = export_list(cloud, volume_id)
    assert export.driver == "nbd" and export.host == host_address() != "127.0.0.1"
    disk = domain_disks(cloud, request_id(answer), instance_id)[volume_id]
    assert disk.get("type") == "network"
    source = disk.find("source")
    assert source is not None and (source.get("protocol"), source.get("name")) == ("nbd", volume_id)
    host = source.find("host")
    assert host is not None and (host.get("name"), host.get("port")) == (export.host, str(export.port))
    # A client on another address reads the volume's bytes through the export.
    assert read_through_nbd(export.uri, 300 * MIB, len(PATTERN), tmp_path) == PATTERN

    detached = ec2.detach_volume(VolumeId=volume_id)
    wait_state(ec2, volume_id, "available")
    assert export_list(cloud, volume_id) == []
    assert volume_id not in domain_disks(cloud, request_id(detached), instance_id)
    wait_for(lambda: not listening(export.host or "", export.port or 0), 10, "the nbd port closed")
    ec2.delete_volume(VolumeId=volume_id)
    ec2.terminate_instances(InstanceIds=[instance_id])
