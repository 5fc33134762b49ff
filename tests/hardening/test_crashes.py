"""A service killed with SIGKILL under a mixed workload (tests/hardening/crash_support.py:
puts, multipart uploads and deletes; launches, terminations and an elastic IP moved; volumes
created, attached, snapshotted, detached and deleted), started again on its port and state:
afterwards every object whose PUT was answered reads back with its checksum, no volume,
snapshot or instance that was answered is missing or there twice, no half-written blob or
finished upload is left, and what the CLC reports matches the CC's nodes and the SC within
10 s of the restart. One cloud for the module; each test crashes one service of it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from services.messages.storage import (SC_SNAPSHOTS_ROUTE, SC_VOLUME_ROUTE, SC_VOLUMES_ROUTE,
                                       CreateSnapshot, CreateVolume, SnapshotInfo, SnapshotList,
                                       VolumeInfo, VolumeList)
from tests.hardening.crash_support import (check, crash_and_restart, end_instances, prepare,
                                           walrus_bytes)
from tests.ebs.support import stalled_node
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

CONVERGE_WITHIN_S = 10.0
FAST = {"Delay": 0.5, "MaxAttempts": 120}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("crashes"), nodes=2,
                       VNET_PUBLICIPS="10.111.220.1-10.111.220.20", SC_MAX_STORAGE=200) as c:
        yield c


@pytest.fixture(scope="module")
def setup(cloud: Cloud) -> tuple[str, dict[str, str], str]:
    return prepare(cloud)


@pytest.mark.parametrize("service", ["walrus", "sc", "cc", "nc", "clc"])
def test_a_service_killed_under_load_loses_nothing_and_the_cloud_converges(
        cloud: Cloud, setup: tuple[str, dict[str, str], str], service: str) -> None:
    image, address, zone = setup
    ledger, seconds = crash_and_restart(cloud, service, image, address, zone)
    print(f"{service}: answered {ledger.done}, failed {ledger.failures}, converged in {seconds:.2f} s")
    assert sum(ledger.done.values()) > 0, ledger.failures
    check(cloud, ledger)
    end_instances(cloud, ledger)
    assert seconds <= CONVERGE_WITHIN_S, f"converged {seconds:.1f} s after {service} restarted"


def test_what_the_sc_made_for_a_clc_that_died_before_recording_it_is_deleted_on_restart(
        cloud: Cloud, setup: tuple[str, dict[str, str], str]) -> None:
    """CreateVolume and CreateSnapshot ask the SC first and record after: a CLC killed in
    between leaves the SC holding what nobody was answered for. Here the SC is asked directly,
    as that CLC did; the restarted CLC deletes both."""
    sc = cloud.internal("sc")
    try:
        made = sc.call("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id="vol-0dead0c1", size_gib=1),
                       VolumeInfo)
        wait_for(lambda: sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=made.volume_id),
                                 response=VolumeInfo).state == "available", 30, "the SC's volume")
        sc.call("POST", SC_SNAPSHOTS_ROUTE, CreateSnapshot(snapshot_id="snap-0dead0c1",
                                                           volume_id=made.volume_id), SnapshotInfo)
        cloud.kill("clc")
        cloud.restart("clc")
        restarted = time.monotonic()

        def gone() -> bool:
            volumes = sc.call("GET", SC_VOLUMES_ROUTE, response=VolumeList).volumes
            snapshots = sc.call("GET", SC_SNAPSHOTS_ROUTE, response=SnapshotList).snapshots
            return all(v.state == "deleted" for v in volumes if v.volume_id == "vol-0dead0c1") and \
                all(s.state == "deleted" for s in snapshots if s.snapshot_id == "snap-0dead0c1")
        wait_for(gone, 30, "the strays deleted")
        assert time.monotonic() - restarted <= CONVERGE_WITHIN_S
    finally:
        sc.close()


def test_a_blob_no_row_names_is_deleted_when_walrus_restarts(
        cloud: Cloud, setup: tuple[str, dict[str, str], str]) -> None:
    """A Walrus killed after a body's file was committed and before its row was written (or
    after a row was deleted and before its file) leaves a file nothing names: made here by
    hand, as that crash leaves it. The restarted Walrus deletes it and nothing else."""
    stored, named = walrus_bytes(cloud)
    assert stored == named
    orphan = cloud.home / "walrus" / "objects" / "ab" / ("ab" + "0" * 30)
    orphan.write_bytes(b"left by a crash" * 100)
    assert walrus_bytes(cloud)[0] == stored + orphan.stat().st_size
    cloud.kill("walrus")
    cloud.restart("walrus")
    assert not orphan.exists()
    assert walrus_bytes(cloud) == (stored, named)


def test_an_attach_under_way_when_the_clc_died_is_carried_out_soon_after_its_restart(
        cloud: Cloud, setup: tuple[str, dict[str, str], str]) -> None:
    """The node stalls (its NC stopped) while the CLC's attach job waits on it; the CLC is
    killed, the node continues, the CLC comes back: the attach its job never finished is done
    again at once (not after the 30 s a job of a living CLC is given), and both sides agree."""
    image, _address, zone = setup
    ec2 = cloud.ec2()
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    instance_id = instance["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    with stalled_node(cloud):
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdg")
        time.sleep(1)  # the job is on its way to the stopped node
        cloud.kill("clc")
    cloud.restart("clc")
    restarted = time.monotonic()
    ec2 = cloud.ec2()

    def attached() -> bool:
        [volume] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        held = [d.volume_id for i in cloud.zone_instances().instances if i.instance_id == instance_id
                for d in i.volumes]
        return bool(volume["Attachments"]) and volume["Attachments"][0]["State"] == "attached" \
            and held == [volume_id]
    wait_for(attached, 60, f"{volume_id} attached on both sides")
    assert time.monotonic() - restarted <= CONVERGE_WITHIN_S
    ec2.terminate_instances(InstanceIds=[instance_id])
