"""The seed's sequence with boto3 against the whole cloud as `make up` starts it (CLC -> CC -> NC
on libvirt's test driver, the SC, Walrus): create a volume, attach it to a running instance as
/dev/sdc (the disk in the NC's domain definition with the volume id as its serial, in
DescribeInstances and in the metadata), write a known pattern through the SC's storage path,
detach (the disk and the export gone), attach to another instance, snapshot, delete the volume,
restore a new one from the snapshot and compare the bytes; a volume outlives its instance; a
device in use is refused and changes nothing; Force; sharing, copying, a corrupted snapshot.

Every test runs on both SC backends (the module's cloud is parametrized): sparse files the node
opens by path, and RBD images in the worker's Ceph cluster that the node gets as libvirt
network disks (protocol rbd, the Ceph user and a secret).

Faults come from real parts: a node that stalls is its NC process stopped (SIGSTOP) and
continued, so an attach is held in flight, or outlasts the CC's call and fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nc.ceph_secret import secret_uuid
from services.bundles.upload import s3_client
from services.messages.attach import ATTACH_ROUTE, AttachDisk, DiskAttachment, DiskSource
from tests.ebs.support import (FAST, PATTERN, attachment, domain_disks, exports, node_volumes,
                               read_at, request_id, sc_info, stalled_node, steps, wait_attached,
                               write_pattern)
from tests.ebs.test_volumes_boto3 import code, volume, wait_gone, wait_state
from tests.support.cloud import Cloud, running_cloud
from tests.support.volume_data import data_of, rbd_settings
from tests.support.waiting import wait_for


@pytest.fixture(scope="module", params=["file", "rbd"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    settings: dict[str, object] = {}
    if request.param == "rbd":
        # Both zones' SCs keep their images in the one pool (volume ids are the cloud's own).
        settings = {**rbd_settings(request.getfixturevalue("ceph")), "SC_MAX_STORAGE": 64}
    with running_cloud(tmp_path_factory.mktemp(f"ebs-attach-{request.param}"), nodes=2,
                       ZONES="zone-1,zone-2", SC_SNAPSHOT_PART_MIB=1, **settings) as c:
        yield c


def disk_source_is(disk, cloud: Cloud, locator: str) -> bool:  # type: ignore[no-untyped-def]
    """The `<disk>` reads the volume where the SC keeps it: the file, or the RBD image with
    the Ceph user and the secret the node defines for it."""
    source = disk.find("source")
    if cloud.config.SC_BACKEND == "file":
        return bool(disk.get("type") == "file" and source.get("file") == locator)
    auth = disk.find("auth")
    return bool(disk.get("type") == "network" and source.get("protocol") == "rbd"
                and source.get("name") == locator.removeprefix("rbd:")
                and auth is not None and auth.get("username") == cloud.config.SC_CEPH_USER
                and auth.find("secret").get("uuid") == secret_uuid(cloud.config.SC_CEPH_USER))


@pytest.fixture(scope="module")
def instances(cloud: Cloud) -> list[str]:
    ec2 = cloud.ec2()
    image = cloud.register_image()
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2, InstanceType="m1.small",
        Placement={"AvailabilityZone": "zone-1"})["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    return ids


def new_volume(ec2, zone: str = "zone-1") -> str:  # type: ignore[no-untyped-def]
    volume_id = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    return str(volume_id)


def test_the_seeds_sequence(cloud: Cloud, instances: list[str]) -> None:
    ec2 = cloud.ec2()
    first, second = instances
    volume_id = new_volume(ec2)

    answer = ec2.attach_volume(VolumeId=volume_id, InstanceId=first, Device="/dev/sdc")
    assert (answer["State"], answer["Device"], answer["InstanceId"]) == ("attaching", "/dev/sdc", first)
    wait_attached(ec2, volume_id)
    assert volume(ec2, volume_id)["State"] == "in-use"
    # The NC put the disk into the instance's domain definition: the volume id is its serial.
    disk = domain_disks(cloud, request_id(answer), first)[volume_id]
    data = data_of(cloud.config)
    path = sc_info(cloud, volume_id).path
    assert disk.find("target").get("dev") == "sdc"  # type: ignore[union-attr]
    assert disk_source_is(disk, cloud, path)
    assert node_volumes(cloud, first) == [volume_id]
    node = ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]
    mappings = node["BlockDeviceMappings"]
    assert [(m["DeviceName"], m["Ebs"]["VolumeId"], m["Ebs"]["Status"]) for m in mappings] == [
        ("/dev/sdc", volume_id, "attached")]
    assert "ebs1" in cloud.metadata(first, "/latest/meta-data/block-device-mapping/").text.split()
    assert cloud.metadata(first, "/latest/meta-data/block-device-mapping/ebs1").text == "sdc"
    assert exports(cloud, volume_id) == [cloud.nodes_of([first])[first]]
    write_pattern(path, 300 * 1024 * 1024, data)

    # What users get wrong while it is attached.
    spare = new_volume(ec2)
    assert code(lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=second,
                                          Device="/dev/sdd")) == "VolumeInUse"
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
    elsewhere = new_volume(ec2, "zone-2")
    assert code(lambda: ec2.attach_volume(VolumeId=elsewhere, InstanceId=first,
                                          Device="/dev/sdd")) == "InvalidVolume.ZoneMismatch"
    other = cloud.ec2(cloud.new_account("ebs-stranger"))
    assert code(lambda: other.attach_volume(VolumeId=spare, InstanceId=first,
                                            Device="/dev/sdd")) == "InvalidVolume.NotFound"
    assert volume(ec2, spare)["State"] == "available" and attachment(ec2, spare) is None
    assert volume(ec2, volume_id)["Attachments"][0]["InstanceId"] == first

    # Detach: the disk leaves the definition and the export goes; then to the other instance.
    detached = ec2.detach_volume(VolumeId=volume_id)
    assert detached["State"] == "detaching"
    wait_state(ec2, volume_id, "available")
    assert exports(cloud, volume_id) == [] and node_volumes(cloud, first) == []
    assert volume_id not in domain_disks(cloud, request_id(detached), first)
    again = ec2.attach_volume(VolumeId=volume_id, InstanceId=second, Device="/dev/sdd")
    wait_attached(ec2, volume_id)
    assert domain_disks(cloud, request_id(again), second)[volume_id].find("target").get("dev") == "sdd"  # type: ignore[union-attr]
    assert read_at(path, 300 * 1024 * 1024, len(PATTERN), data) == PATTERN

    # Snapshot it, delete it, restore it: the bytes come back exactly.
    snap = ec2.create_snapshot(VolumeId=volume_id, Description="nightly")
    assert snap["State"] == "pending" and snap["VolumeSize"] == 1
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
    done = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
    assert done["Progress"] == "100%" and done["Description"] == "nightly"
    # Attached to a running instance, but libvirt's test driver runs no guest to freeze.
    assert {"Key": "eucasim:consistency", "Value": "crash-consistent"} in done["Tags"]
    said = [s.what for s in steps(cloud, request_id(snap)) if s.service == "nc"]
    assert any("no freeze of " + second in what and "runs no guest" in what for what in said), said
    forced = ec2.detach_volume(VolumeId=volume_id, Force=True)
    wait_state(ec2, volume_id, "available")
    assert volume_id not in domain_disks(cloud, request_id(forced), second)
    ec2.delete_volume(VolumeId=volume_id)
    wait_gone(ec2, volume_id)
    restored = ec2.create_volume(AvailabilityZone="zone-2", SnapshotId=snap["SnapshotId"])
    assert restored["Size"] == 1 and restored["SnapshotId"] == snap["SnapshotId"]
    wait_state(ec2, restored["VolumeId"], "available")
    copy = sc_info(cloud, restored["VolumeId"]).path
    assert read_at(copy, 300 * 1024 * 1024, len(PATTERN), data) == PATTERN
    assert data.size(copy) == 1 << 30
    assert [v["VolumeId"] for v in ec2.describe_volumes(Filters=[
        {"Name": "snapshot-id", "Values": [snap["SnapshotId"]]}])["Volumes"]] == [restored["VolumeId"]]
    for leftover in (spare, elsewhere, restored["VolumeId"]):
        ec2.delete_volume(VolumeId=leftover)


def test_a_device_in_use_is_refused_and_changes_nothing(cloud: Cloud, instances: list[str]) -> None:
    ec2 = cloud.ec2()
    first = instances[0]
    held, spare = new_volume(ec2), new_volume(ec2)
    answer = ec2.attach_volume(VolumeId=held, InstanceId=first, Device="/dev/sdf")
    wait_attached(ec2, held)
    before = domain_disks(cloud, request_id(answer), first)
    # The same name, and names that land on the same disk in the guest (xvdf and sdf are one
    # SCSI disk; sdf1 is a partition of it).
    for device in ("/dev/sdf", "sdf", "/dev/xvdf", "/dev/sdf1"):
        assert code(lambda: ec2.attach_volume(VolumeId=spare, InstanceId=first,
                                              Device=device)) == "InvalidParameterValue", device
    assert volume(ec2, spare)["State"] == "available" and attachment(ec2, spare) is None
    assert exports(cloud, spare) == []
    assert node_volumes(cloud, first) == [held]
    assert list(before) == [held]
    assert [(a["VolumeId"], a["Device"], a["State"]) for a in volume(ec2, held)["Attachments"]] == [
        (held, "/dev/sdf", "attached")]
    ec2.detach_volume(VolumeId=held)
    wait_state(ec2, held, "available")
    for mine in (held, spare):
        ec2.delete_volume(VolumeId=mine)


def test_a_volume_outlives_its_instance(cloud: Cloud, instances: list[str]) -> None:
    ec2 = cloud.ec2()
    image = cloud.register_image()
    doomed = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m1.small",
                               Placement={"AvailabilityZone": "zone-1"})["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[doomed], WaiterConfig=FAST)
    volume_id = new_volume(ec2)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=doomed, Device="/dev/sdf")
    wait_attached(ec2, volume_id)
    assert node_volumes(cloud, doomed) == [volume_id]
    data = data_of(cloud.config)
    path = sc_info(cloud, volume_id).path
    write_pattern(path, 4096, data)
    ec2.terminate_instances(InstanceIds=[doomed])
    wait_state(ec2, volume_id, "available")
    assert attachment(ec2, volume_id) is None and exports(cloud, volume_id) == []
    assert read_at(path, 4096, len(PATTERN), data) == PATTERN
    ec2.delete_volume(VolumeId=volume_id)


def test_an_attach_that_outlasts_a_stalled_node_leaves_nothing_behind(
        cloud: Cloud, instances: list[str]) -> None:
    """The node hangs: the CC's call to it times out (or the CC finds the node down), the CLC
    gives the attachment up and unexports; whatever the node does with the call once it wakes,
    it ends without the disk (a late attach is a stray disk, taken off: the next test)."""
    ec2 = cloud.ec2()
    target = instances[0]
    volume_id = new_volume(ec2)
    with stalled_node(cloud):
        answer = ec2.attach_volume(VolumeId=volume_id, InstanceId=target, Device="/dev/sdh")
        assert answer["State"] == "attaching"
        wait_for(lambda: attachment(ec2, volume_id) is None, 60, "the attachment given up")
        assert volume(ec2, volume_id)["State"] == "available"
        assert exports(cloud, volume_id) == []
    events = ec2.describe_volume_status(VolumeIds=[volume_id])["VolumeStatuses"][0]["Events"]
    assert "could not attach" in events[0]["Description"]
    assert "did not answer" in events[0]["Description"] or "down" in events[0]["Description"]
    wait_for(lambda: volume_id not in node_volumes(cloud, target), 60, "no disk on the node")
    assert attachment(ec2, volume_id) is None and exports(cloud, volume_id) == []
    ec2.delete_volume(VolumeId=volume_id)


def test_a_stray_disk_on_a_node_is_taken_off(cloud: Cloud, instances: list[str]) -> None:
    """A disk a node holds that the CLC has not attached there (an attach carried out after the
    CLC gave it up) is taken off by the CLC's reconcile round. Made here through the CC's own
    attach route, as a late attach would reach the node."""
    ec2 = cloud.ec2()
    target = instances[0]
    volume_id = new_volume(ec2)
    path = sc_info(cloud, volume_id).path
    if cloud.config.SC_BACKEND == "rbd":
        source = DiskSource(driver="rbd", host="127.0.0.1", port=6789, export_name=path.removeprefix("rbd:"),
                            user=cloud.config.SC_CEPH_USER, uri=f"rbd://127.0.0.1:6789/{path[4:]}")
    else:
        source = DiskSource(driver="local", path=path, uri=Path(path).as_uri())
    cc = cloud.internal("cc")
    try:
        made = cc.call("POST", ATTACH_ROUTE.format(instance_id=target),
                       AttachDisk(volume_id=volume_id, device="/dev/sdj", source=source),
                       DiskAttachment)
        assert made.state == "attached"
    finally:
        cc.close()
    wait_for(lambda: volume_id not in node_volumes(cloud, target), 30, "the stray disk taken off")
    assert volume(ec2, volume_id)["State"] == "available" and attachment(ec2, volume_id) is None
    ec2.delete_volume(VolumeId=volume_id)


def test_a_detach_while_attaching_leaves_nothing_behind(cloud: Cloud, instances: list[str]) -> None:
    ec2 = cloud.ec2()
    target = instances[1]
    volume_id = new_volume(ec2)
    with stalled_node(cloud):
        answer = ec2.attach_volume(VolumeId=volume_id, InstanceId=target, Device="/dev/sdk")
        # Exported: the attach is at the CC now, waiting for the stalled node.
        wait_for(lambda: exports(cloud, volume_id), 30, "the export made")
        # The user changes their mind.
        assert ec2.detach_volume(VolumeId=volume_id)["State"] == "detaching"
        assert attachment(ec2, volume_id)["State"] == "detaching"  # type: ignore[index]
    wait_state(ec2, volume_id, "available")
    assert attachment(ec2, volume_id) is None
    wait_for(lambda: exports(cloud, volume_id) == [], 30, "no export left")
    wait_for(lambda: volume_id not in node_volumes(cloud, target), 30, "no disk left")
    # The node did attach it once awake, and took it off again.
    said = [s.what for s in steps(cloud, request_id(answer)) if s.service == "nc"]
    assert any(w.startswith(f"attached {volume_id}") for w in said), said
    assert volume_id not in domain_disks(cloud, request_id(answer), target)
    attribute = ec2.describe_instance_attribute(InstanceId=target, Attribute="blockDeviceMapping")
    assert volume_id not in [m["Ebs"]["VolumeId"] for m in attribute["BlockDeviceMappings"]]
    ec2.delete_volume(VolumeId=volume_id)


def test_force_detach_from_a_stalled_node(cloud: Cloud, instances: list[str]) -> None:
    """Force is EC2's last resort: the volume comes back even though its node does not answer;
    the node, once awake, drops the disk too."""
    ec2 = cloud.ec2()
    target = instances[1]
    volume_id = new_volume(ec2)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=target, Device="/dev/sdm")
    wait_attached(ec2, volume_id)
    with stalled_node(cloud):
        assert ec2.detach_volume(VolumeId=volume_id, Force=True)["State"] == "detaching"
        wait_state(ec2, volume_id, "available")
        assert exports(cloud, volume_id) == []
    wait_for(lambda: volume_id not in node_volumes(cloud, target), 60, "the disk gone from the node")
    ec2.delete_volume(VolumeId=volume_id)


def test_sharing_copying_and_a_corrupted_snapshot(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    friend_key = cloud.new_account("ebs-friend")
    friend = cloud.ec2(friend_key)
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    write_pattern(sc_info(cloud, volume_id).path, 0, data_of(cloud.config))
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
    # Restored, that is: with its volume gone, no RBD snapshot is left in the pool to clone
    # (a clone reads the pool, not Walrus), and the friend's clone keeps its bytes.
    ec2.delete_volume(VolumeId=volume_id)
    wait_gone(ec2, volume_id)
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
    ec2.delete_volume(VolumeId=bad)
    friend.delete_volume(VolumeId=theirs)
    ec2.delete_snapshot(SnapshotId=copied)
