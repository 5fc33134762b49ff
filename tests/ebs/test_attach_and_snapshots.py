"""The seed's sequence with boto3 against the whole cloud as `make up` starts it: create a
volume, attach it to a running instance as /dev/sdc, write a known pattern through the SC's
storage path, detach, attach to another instance, snapshot, delete the volume, restore a new
one from the snapshot and compare the bytes; a volume outlives its instance; a failed attach
leaves no export; a corrupted snapshot is refused; sharing, copying, and every mistake.

The CC's attach route is a stand-in in front of the real CC (tests/ebs/stand_in_cc.py) until
the CC/NC side of services/messages/attach.py lands; everything else is the real cloud."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import launcher
from services.bundles.upload import s3_client
from services.config import CloudConfig
from services.messages.storage import (SC_EXPORTS_ROUTE, SC_VOLUME_ROUTE, VolumeExportList,
                                       VolumeInfo)
from tests.ebs.stand_in_cc import AttachingCC
from tests.ebs.test_volumes_boto3 import code, volume, wait_gone, wait_state
from tests.support.cloud import SECRET, Cloud, running_cloud
from tests.support.servers import running
from tests.support.waiting import wait_for

FAST = {"Delay": 0.5, "MaxAttempts": 120}
PATTERN = b"eucasim EBS pattern \x00\x01\x02\xff" * 4096


@pytest.fixture(scope="module")
def stand_in() -> Iterator[AttachingCC]:
    cc = AttachingCC(SECRET)
    yield cc
    cc.close()


@pytest.fixture(scope="module")
def cloud(stand_in: AttachingCC, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    planned = launcher.plan

    def plan(config: CloudConfig, nodes: int) -> list[launcher.ServiceSpec]:
        """The launcher's plan, which binds the real CC's port: the stand-in forwards there."""
        specs = planned(config, nodes)
        stand_in.forward_to(f"http://127.0.0.1:{config.CC_PORT}")
        return specs

    with running(stand_in.app) as front, pytest.MonkeyPatch.context() as patch:
        patch.setattr(launcher, "plan", plan)
        with running_cloud(tmp_path_factory.mktemp("ebs-attach"), nodes=2, CC_URL=front,
                           ZONES="zone-1,zone-2", SC_SNAPSHOT_PART_MIB=1) as c:
            yield c


@pytest.fixture(scope="module")
def instances(cloud: Cloud) -> list[str]:
    ec2 = cloud.ec2()
    image = cloud.register_image()
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, InstanceType="m1.small",
        Placement={"AvailabilityZone": "zone-1"})["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    return ids


def sc_info(cloud: Cloud, volume_id: str) -> VolumeInfo:
    sc = cloud.internal("sc")
    try:
        return sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo)
    finally:
        sc.close()


def exports(cloud: Cloud, volume_id: str) -> list[str]:
    sc = cloud.internal("sc")
    try:
        found = sc.call("GET", SC_EXPORTS_ROUTE.format(volume_id=volume_id), response=VolumeExportList)
        return [e.node for e in found.exports]
    finally:
        sc.close()


def attachment(ec2, volume_id: str) -> dict | None:  # type: ignore[no-untyped-def]
    found = volume(ec2, volume_id)["Attachments"]
    return found[0] if found else None


def wait_attached(ec2, volume_id: str) -> dict:  # type: ignore[no-untyped-def]
    return wait_for(lambda: (a := attachment(ec2, volume_id)) and a["State"] == "attached" and a,
                    60, f"{volume_id} attached")


def write_pattern(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(PATTERN)


def read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def test_the_seeds_sequence(cloud: Cloud, instances: list[str],
                            stand_in: AttachingCC) -> None:
    cc = stand_in
    ec2 = cloud.ec2()
    first, second = instances
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")

    answer = ec2.attach_volume(VolumeId=volume_id, InstanceId=first, Device="/dev/sdc")
    assert (answer["State"], answer["Device"], answer["InstanceId"]) == ("attaching", "/dev/sdc", first)
    wait_attached(ec2, volume_id)
    assert volume(ec2, volume_id)["State"] == "in-use"
    node = ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]
    mappings = node["BlockDeviceMappings"]
    assert [(m["DeviceName"], m["Ebs"]["VolumeId"], m["Ebs"]["Status"]) for m in mappings] == [
        ("/dev/sdc", volume_id, "attached")]
    assert cloud.metadata(first, "/latest/meta-data/block-device-mapping/ebs1").text == "sdc"
    assert volume_id in cc.disks[first]
    assert len(exports(cloud, volume_id)) == 1
    path = Path(sc_info(cloud, volume_id).path)
    write_pattern(path, 300 * 1024 * 1024)

    # What users get wrong while it is attached.
    spare = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, spare, "available")
    assert code(lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=second,
                                          Device="/dev/sdd")) == "VolumeInUse"
    assert code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId=first,
                                          Device="/dev/sdc")) == "InvalidParameterValue"
    assert code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId=first,
                                          Device="/dev/sda1")) == "InvalidParameterValue"
    assert code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId=first,
                                          Device="floppy")) == "InvalidParameterValue"
    assert code(lambda: ec2.delete_volume(VolumeId=volume_id)) == "VolumeInUse"
    assert code(lambda: ec2.detach_volume(VolumeId=volume_id, InstanceId=second)) == \
        "InvalidAttachment.NotFound"
    assert code(lambda: ec2.detach_volume(VolumeId=spare)) == "IncorrectState"
    assert code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId="i-12345678",
                                          Device="/dev/sdd")) == "InvalidInstanceID.NotFound"
    elsewhere = ec2.create_volume(AvailabilityZone="zone-2", Size=1)["VolumeId"]
    wait_state(ec2, elsewhere, "available")
    assert code(lambda: ec2.attach_volume(VolumeId=elsewhere, InstanceId=first,
                                          Device="/dev/sdd")) == "InvalidVolume.ZoneMismatch"
    other = cloud.ec2(cloud.new_account("ebs-stranger"))
    assert code(lambda: other.attach_volume(VolumeId=spare, InstanceId=first,
                                            Device="/dev/sdd")) == "InvalidVolume.NotFound"
    assert volume(ec2, spare)["State"] == "available" and attachment(ec2, spare) is None
    assert volume(ec2, volume_id)["Attachments"][0]["InstanceId"] == first

    # Detach, then attach to the other instance: the data went with it.
    assert ec2.detach_volume(VolumeId=volume_id)["State"] == "detaching"
    wait_state(ec2, volume_id, "available")
    assert exports(cloud, volume_id) == [] and volume_id not in cc.disks.get(first, {})
    ec2.attach_volume(VolumeId=volume_id, InstanceId=second, Device="/dev/sdd")
    wait_attached(ec2, volume_id)
    assert read_at(path, 300 * 1024 * 1024, len(PATTERN)) == PATTERN

    # Snapshot it, delete it, restore it: the bytes come back exactly.
    snap = ec2.create_snapshot(VolumeId=volume_id, Description="nightly")
    assert snap["State"] == "pending" and snap["VolumeSize"] == 1
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
    done = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
    assert done["Progress"] == "100%" and done["Description"] == "nightly"
    assert {"Key": "eucasim:consistency", "Value": "crash-consistent"} in done["Tags"]
    ec2.detach_volume(VolumeId=volume_id, Force=True)
    wait_state(ec2, volume_id, "available")
    ec2.delete_volume(VolumeId=volume_id)
    wait_gone(ec2, volume_id)
    restored = ec2.create_volume(AvailabilityZone="zone-2", SnapshotId=snap["SnapshotId"])
    assert restored["Size"] == 1 and restored["SnapshotId"] == snap["SnapshotId"]
    wait_state(ec2, restored["VolumeId"], "available")
    copy = Path(sc_info(cloud, restored["VolumeId"]).path)
    assert read_at(copy, 300 * 1024 * 1024, len(PATTERN)) == PATTERN
    assert os.path.getsize(copy) == 1 << 30
    assert [v["VolumeId"] for v in ec2.describe_volumes(Filters=[
        {"Name": "snapshot-id", "Values": [snap["SnapshotId"]]}])["Volumes"]] == [restored["VolumeId"]]
    for leftover in (spare, elsewhere, restored["VolumeId"]):
        ec2.delete_volume(VolumeId=leftover)


def test_a_volume_outlives_its_instance(cloud: Cloud, instances: list[str]) -> None:
    ec2 = cloud.ec2()
    image = cloud.register_image()
    doomed = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m1.small",
                               Placement={"AvailabilityZone": "zone-1"})["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[doomed], WaiterConfig=FAST)
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    ec2.attach_volume(VolumeId=volume_id, InstanceId=doomed, Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    path = Path(sc_info(cloud, volume_id).path)
    write_pattern(path, 4096)
    ec2.terminate_instances(InstanceIds=[doomed])
    wait_state(ec2, volume_id, "available")
    assert attachment(ec2, volume_id) is None and exports(cloud, volume_id) == []
    assert read_at(path, 4096, len(PATTERN)) == PATTERN
    ec2.delete_volume(VolumeId=volume_id)


def test_a_failed_attach_leaves_no_export(cloud: Cloud, instances: list[str],
                                          stand_in: AttachingCC) -> None:
    cc = stand_in
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    cc.fail_next = True
    assert ec2.attach_volume(VolumeId=volume_id, InstanceId=instances[0],
                             Device="/dev/sdh")["State"] == "attaching"
    wait_for(lambda: attachment(ec2, volume_id) is None, 60, "the attachment given up")
    assert volume(ec2, volume_id)["State"] == "available"
    assert exports(cloud, volume_id) == []
    events = ec2.describe_volume_status(VolumeIds=[volume_id])["VolumeStatuses"][0]["Events"]
    assert "could not attach" in events[0]["Description"]
    ec2.delete_volume(VolumeId=volume_id)


def test_sharing_copying_and_a_corrupted_snapshot(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    friend_key = cloud.new_account("ebs-friend")
    friend = cloud.ec2(friend_key)
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    write_pattern(Path(sc_info(cloud, volume_id).path), 0)
    snap = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)

    assert code(lambda: friend.describe_snapshots(SnapshotIds=[snap])) == "InvalidSnapshot.NotFound"
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[friend_key.account_id])
    assert ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == [{"UserId": friend_key.account_id}]
    assert [s["SnapshotId"] for s in friend.describe_snapshots(
        RestorableByUserIds=["self"])["Snapshots"]] == [snap]
    assert friend.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    theirs = friend.create_volume(AvailabilityZone="zone-1", SnapshotId=snap)["VolumeId"]
    wait_state(friend, theirs, "available")
    assert code(lambda: friend.delete_snapshot(SnapshotId=snap)) == "InvalidSnapshot.NotFound"
    ec2.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert code(lambda: friend.create_volume(AvailabilityZone="zone-1",
                                             SnapshotId=snap)) == "InvalidSnapshot.NotFound"
    ec2.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert snap in [s["SnapshotId"] for s in friend.describe_snapshots()["Snapshots"]]
    ec2.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Remove": [{"Group": "all"}]})
    assert snap not in [s["SnapshotId"] for s in friend.describe_snapshots()["Snapshots"]]

    # A copy shares the bytes; they stay while the copy does.
    copied = ec2.copy_snapshot(SourceRegion=cloud.config.REGION, SourceSnapshotId=snap,
                               Description="copy")["SnapshotId"]
    ec2.delete_snapshot(SnapshotId=snap)
    assert code(lambda: ec2.describe_snapshots(SnapshotIds=[snap])) == "InvalidSnapshot.NotFound"
    assert ec2.describe_snapshots(SnapshotIds=[copied])["Snapshots"][0]["State"] == "completed"
    assert code(lambda: ec2.copy_snapshot(SourceRegion="elsewhere-1",
                                          SourceSnapshotId=copied)) == "InvalidParameterValue"

    # Change one byte of a stored part: a volume restored from it goes to error, saying which.
    s3 = s3_client(cloud.config.service_url("walrus"), cloud.admin, cloud.config.REGION)
    bucket = f"snapset-{snap}"
    part = s3.get_object(Bucket=bucket, Key="part-00000000")["Body"].read()
    s3.put_object(Bucket=bucket, Key="part-00000000", Body=bytes([part[0] ^ 0xFF]) + part[1:])
    bad = ec2.create_volume(AvailabilityZone="zone-1", SnapshotId=copied)["VolumeId"]
    wait_state(ec2, bad, "error")
    events = ec2.describe_volume_status(VolumeIds=[bad])["VolumeStatuses"][0]
    assert events["VolumeStatus"]["Status"] == "impaired"
    assert "part-00000000" in events["Events"][0]["Description"]

    assert code(lambda: ec2.create_snapshot(VolumeId="vol-12345678")) == "InvalidVolume.NotFound"
    assert code(lambda: ec2.delete_snapshot(SnapshotId="snap-12345678")) == "InvalidSnapshot.NotFound"
    assert code(lambda: ec2.describe_snapshot_attribute(
        SnapshotId=copied, Attribute="bogus")) == "InvalidParameterValue"
    for mine in (volume_id, bad):
        ec2.delete_volume(VolumeId=mine)
    friend.delete_volume(VolumeId=theirs)
    ec2.delete_snapshot(SnapshotId=copied)


def test_a_detach_while_attaching_leaves_nothing_behind(cloud: Cloud, instances: list[str],
                                                        stand_in: AttachingCC) -> None:
    cc = stand_in
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    cc.release.clear()
    cc.hold.set()
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instances[1], Device="/dev/sdk")
    assert cc.held.wait(60)
    # The CC is attaching now; the user changes their mind.
    assert ec2.detach_volume(VolumeId=volume_id)["State"] == "detaching"
    assert attachment(ec2, volume_id)["State"] == "detaching"  # type: ignore[index]
    cc.release.set()
    wait_state(ec2, volume_id, "available")
    assert attachment(ec2, volume_id) is None
    wait_for(lambda: exports(cloud, volume_id) == [], 30, "no export left")
    assert volume_id not in cc.disks.get(instances[1], {})
    attribute = ec2.describe_instance_attribute(InstanceId=instances[1], Attribute="blockDeviceMapping")
    assert volume_id not in [m["Ebs"]["VolumeId"] for m in attribute["BlockDeviceMappings"]]
    ec2.delete_volume(VolumeId=volume_id)
