"""Point-in-time consistency of a snapshot, against the whole cloud as `make up` starts it with
the in-memory hypervisor (HYPERVISOR_URI=fake://), whose running domains have a guest agent:
a snapshot of a volume attached to a running guest freezes the guest's file systems (CLC -> CC
-> NC -> fsFreeze) before the SC's point-in-time step and thaws them after it, as the request's
trace shows in order, and is `application-consistent` (also in `eucasim snapshot show`); the
thaw follows a failed SC step too; a detached volume's snapshot is `crash-consistent` with no
freeze at all. (The test driver's crash-consistent answer: test_attach_and_snapshots.py.)"""

from __future__ import annotations

import os
import sys
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from services.tracing import TraceStep
from tests.ebs.support import (FAST, PATTERN, read_at, request_id, sc_info, steps, wait_attached,
                               write_pattern)
from tests.ebs.test_volumes_boto3 import wait_state
from tests.support.cloud import Cloud, running_cloud

CONSISTENCY = "eucasim:consistency"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("ebs-consistency"), nodes=1,
                       HYPERVISOR_URI="fake://", SC_SNAPSHOT_PART_MIB=1) as c:
        yield c


@pytest.fixture(scope="module")
def guest(cloud: Cloud) -> str:
    ec2 = cloud.ec2()
    instance_id = ec2.run_instances(ImageId=cloud.register_image(), MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    return str(instance_id)


def attached_volume(cloud: Cloud, instance_id: str, device: str) -> str:
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(AvailabilityZone=cloud.config.zones[0], Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
    wait_attached(ec2, volume_id)
    return str(volume_id)


def consistency(cloud: Cloud, snapshot_id: str) -> str:
    tags = cloud.ec2().describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["Tags"]
    return str({t["Key"]: t["Value"] for t in tags}[CONSISTENCY])


def one(found: list[TraceStep], service: str, starts: str) -> TraceStep:
    matching = [s for s in found if s.service == service and s.what.startswith(starts)]
    assert len(matching) == 1, [(s.service, s.what) for s in found]
    return matching[0]


def test_a_running_guest_is_frozen_around_the_point_in_time(cloud: Cloud, guest: str) -> None:
    ec2 = cloud.ec2()
    volume_id = attached_volume(cloud, guest, "/dev/sdc")
    write_pattern(Path(sc_info(cloud, volume_id).path), 5 * 1024 * 1024)
    snap = ec2.create_snapshot(VolumeId=volume_id, Description="app")
    assert {"Key": CONSISTENCY, "Value": "application-consistent"} in snap["Tags"]
    found = steps(cloud, request_id(snap))
    frozen = one(found, "nc", "froze ")
    point = one(found, "sc", f"{snap['SnapshotId']}: {volume_id} frozen by")
    thawed = one(found, "nc", "thawed ")
    # The freeze returned before the SC took its point in time, and the thaw came after it.
    assert frozen.at < point.at < thawed.at, (frozen, point, thawed)
    assert guest in frozen.what and volume_id in frozen.what and "fsFreeze" in frozen.what
    assert thawed.what.startswith("thawed 4 ")  # the fake guest's three disks and the volume
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
    assert consistency(cloud, snap["SnapshotId"]) == "application-consistent"
    env = {**os.environ, "EUCASIM_HOME": str(cloud.home), "COLUMNS": "200"}
    shown = subprocess.run([sys.executable, "-m", "services.cli", "snapshot", "show", snap["SnapshotId"]],
                           env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "application-consistent" in shown.stdout, shown.stdout + shown.stderr

    # The snapshot restores what was there.
    restored = ec2.create_volume(AvailabilityZone=cloud.config.zones[0], SnapshotId=snap["SnapshotId"])
    wait_state(ec2, restored["VolumeId"], "available")
    assert read_at(Path(sc_info(cloud, restored["VolumeId"]).path), 5 * 1024 * 1024, len(PATTERN)) == PATTERN
    ec2.delete_volume(VolumeId=restored["VolumeId"])


def test_the_guest_is_thawed_when_the_sc_step_fails(cloud: Cloud, guest: str) -> None:
    ec2 = cloud.ec2()
    volume_id = attached_volume(cloud, guest, "/dev/sdd")
    path = Path(sc_info(cloud, volume_id).path)
    # The SC's disk loses the volume's file: its point-in-time step fails.
    os.unlink(path)
    try:
        with pytest.raises(ClientError) as failed:
            ec2.create_snapshot(VolumeId=volume_id)
    finally:
        with open(path, "wb") as f:
            f.truncate(1 << 30)
    found = steps(cloud, failed.value.response["ResponseMetadata"]["RequestId"])
    frozen, thawed = one(found, "nc", "froze "), one(found, "nc", "thawed ")
    assert frozen.at < thawed.at
    assert not [s for s in found if s.service == "sc" and "frozen by" in s.what]
    # Nothing stayed frozen: the next snapshot freezes the guest again.
    again = ec2.create_snapshot(VolumeId=volume_id)
    assert {"Key": CONSISTENCY, "Value": "application-consistent"} in again["Tags"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[again["SnapshotId"]], WaiterConfig=FAST)


def test_a_detached_volume_is_crash_consistent_without_a_freeze(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(AvailabilityZone=cloud.config.zones[0], Size=1)["VolumeId"]
    wait_state(ec2, volume_id, "available")
    snap = ec2.create_snapshot(VolumeId=volume_id)
    assert {"Key": CONSISTENCY, "Value": "crash-consistent"} in snap["Tags"]
    found = steps(cloud, request_id(snap))
    assert not [s for s in found if s.service in ("cc", "nc")], found
    clc = [s.what for s in found if s.service == "clc"]
    assert any("not attached to a running instance" in what for what in clc), clc
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
