"""Each fault kind, injected into a whole running cloud (fake:// nodes) through the NC's
admin route or Walrus, seen from the user's side with boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from services.cli_fault import (clear_node, clear_processes, corrupt_image, cut_link, inject_node,
                                restore_images, skew_clock)
from services.messages.faults import (FAULTS_ROUTE, PROCESS_FAULTS_ROUTE, FaultList, InjectProcessFault,
                                      ProcessFaultList)
from tests.ebs.support import exports
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

GRACE_S = 4.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("faults"), nodes=3, HYPERVISOR_URI="fake://",
                       SCHEDPOLICY="GREEDY", MAX_CORES=4, NODE_LOST_GRACE=GRACE_S) as running:
        yield running


@pytest.fixture(scope="module")
def image(cloud: Cloud) -> str:
    return cloud.register_image()


def nc_call(cloud: Cloud) -> Any:
    def call(method: str, path: str, body: Any, response: Any) -> Any:
        client = cloud.internal("nc")
        try:
            return client.call(method, path, body, response)
        finally:
            client.close()
    return call


def any_call(cloud: Cloud) -> Any:
    def call(service: str, method: str, path: str, body: Any, response: Any) -> Any:
        client = cloud.internal(service)
        try:
            return client.call(method, path, body, response)
        finally:
            client.close()
    return call


@pytest.fixture(autouse=True)
def no_fault_left(cloud: Cloud) -> Iterator[None]:
    yield
    clear_processes(any_call(cloud))
    clear_node(nc_call(cloud))
    restore_images(cloud.config)
    wait_for(lambda: all(n.state == "up" for n in cloud.nodes().nodes), timeout=30, what="every node up again")


def instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def launch(cloud: Cloud, image: str, count: int = 1, wait_running: bool = True) -> list[str]:
    ec2 = cloud.ec2()
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, InstanceType="m1.small",
                                                      MinCount=count, MaxCount=count)["Instances"]]
    if wait_running:
        wait_for(lambda: all(instance(ec2, i)["State"]["Name"] == "running" for i in ids), timeout=30,
                 what=f"{ids} running")
    return ids


def small_free(ec2: Any) -> int:
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    line = next(z for z in zones if z["ZoneName"].endswith("m1.small"))
    return int(line["State"].split("/")[0])


def down_nodes(cloud: Cloud) -> set[str]:
    return {n.name for n in cloud.nodes().nodes if n.state == "down"}


def test_node_down_past_the_grace_terminates_its_instances_naming_it(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    free_before = small_free(ec2)
    [lost] = launch(cloud, image)
    node = cloud.nodes_of([lost])[lost]
    inject_node(nc_call(cloud), "node-down", node)
    wait_for(lambda: node in down_nodes(cloud), timeout=20, what=f"{node} down in the CC")
    # The zone's capacity no longer counts the node: 4 cores of m1.small each (the node's
    # own instance had taken one of them already).
    assert wait_for(lambda: small_free(ec2) <= free_before - 4, timeout=10, what="capacity shrunk") is True
    [placed] = launch(cloud, image)
    assert cloud.nodes_of([placed])[placed] != node, "a launch went to the dead node"
    gone = wait_for(lambda: (i := instance(ec2, lost))["State"]["Name"] == "terminated" and i,
                    timeout=GRACE_S + 20, what=f"{lost} terminated after the grace")
    assert f"node {node} was lost" in gone["StateReason"]["Message"]
    assert gone["StateReason"]["Code"] == "Server.InternalError"
    ec2.terminate_instances(InstanceIds=[placed])


def test_node_back_within_the_grace_keeps_its_instances_running(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    [kept] = launch(cloud, image)
    node = cloud.nodes_of([kept])[kept]
    inject_node(nc_call(cloud), "node-down", node)
    wait_for(lambda: node in down_nodes(cloud), timeout=20, what=f"{node} down in the CC")
    clear_node(nc_call(cloud), "node-down", node)
    wait_for(lambda: node not in down_nodes(cloud), timeout=20, what=f"{node} back")
    assert instance(ec2, kept)["State"]["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[kept])


def test_disk_full_fails_the_launch_with_the_nodes_reason(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    for node in cloud.nodes().nodes:
        inject_node(nc_call(cloud), "disk-full", node.name)
    [failed] = launch(cloud, image, wait_running=False)
    gone = wait_for(lambda: (i := instance(ec2, failed))["State"]["Name"] == "terminated" and i,
                    timeout=30, what=f"{failed} failed")
    assert "No space left on device" in gone["StateReason"]["Message"]


def test_node_slow_holds_a_launch_pending_until_cleared(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    for node in cloud.nodes().nodes:
        inject_node(nc_call(cloud), "node-slow", node.name, seconds=3600)
    assert {f.kind for f in nc_call(cloud)("GET", FAULTS_ROUTE, None, FaultList).faults} == {"node-slow"}
    [slow] = launch(cloud, image, wait_running=False)
    wait_for(lambda: cloud.nodes_of([slow]), timeout=20, what=f"{slow} placed on a node")
    # The node holds it in its hypervisor call; nothing can make it running while the fault holds.
    assert instance(ec2, slow)["State"]["Name"] == "pending"
    clear_node(nc_call(cloud), "node-slow")
    wait_for(lambda: instance(ec2, slow)["State"]["Name"] == "running", timeout=30, what=f"{slow} running")
    ec2.terminate_instances(InstanceIds=[slow])


def test_corrupt_image_fails_launches_with_walrus_reason_until_restored(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    fresh = cloud.register_image()          # not in any node's cache yet
    changed = corrupt_image(cloud.config, fresh)
    part = changed.rsplit("/", 1)[1]
    [failed] = launch(cloud, fresh, wait_running=False)
    gone = wait_for(lambda: (i := instance(ec2, failed))["State"]["Name"] == "terminated" and i,
                    timeout=30, what=f"{failed} failed")
    message = gone["StateReason"]["Message"]
    assert f"({part}) is corrupt: its SHA-1" in message, message
    assert restore_images(cloud.config) == [fresh]
    launch(cloud, fresh)


def test_attach_to_a_down_node_fails_cleanly_and_leaves_no_export(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    [victim] = launch(cloud, image)
    node = cloud.nodes_of([victim])[victim]
    zone = instance(ec2, victim)["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
             timeout=20, what=f"{volume} available")
    inject_node(nc_call(cloud), "node-down", node)
    wait_for(lambda: node in down_nodes(cloud), timeout=20, what=f"{node} down in the CC")
    # The CLC answers before it calls any service; the node's silence comes after.
    assert ec2.attach_volume(VolumeId=volume, InstanceId=victim, Device="/dev/sdf")["State"] == "attaching"
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
             timeout=30, what=f"{volume} available again")
    assert ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"] == []
    assert exports(cloud, volume) == []


def test_link_cut_between_cc_and_nc_takes_the_zones_capacity_until_cleared(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    assert small_free(ec2) > 0
    cut_link(any_call(cloud), cloud.config.service_url, "cc-nc")
    wait_for(lambda: len(down_nodes(cloud)) == 3, timeout=20, what="every node down in the CC")
    wait_for(lambda: small_free(ec2) == 0, timeout=10, what="no capacity left in the zone")
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=image, InstanceType="m1.small", MinCount=1, MaxCount=1)
    assert refused.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    clear_processes(any_call(cloud))
    wait_for(lambda: small_free(ec2) > 0, timeout=20, what="capacity back")


def test_clock_skew_of_the_cc_fails_launches_with_the_refusal(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    skew_clock(any_call(cloud), "cc", 900)
    [failed] = launch(cloud, image, wait_running=False)
    gone = wait_for(lambda: (i := instance(ec2, failed))["State"]["Name"] == "terminated" and i,
                    timeout=30, what=f"{failed} failed")
    # The CC signs its answer's calls 900 s ahead and checks the CLC's 900 s behind: refused.
    assert "could not start the instance" in gone["StateReason"]["Message"]
    assert "internal call timestamp is 900 s away" in gone["StateReason"]["Message"]
    clear_processes(any_call(cloud))       # reachable although the CC's clock is off
    # Its polls of the nodes were refused too, so the zone had no capacity left; it comes back.
    wait_for(lambda: small_free(ec2) > 0, timeout=20, what="capacity back")
    launch(cloud, image)


def test_disk_full_on_the_sc_refuses_new_volumes_until_cleared(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    any_call(cloud)("sc", "POST", PROCESS_FAULTS_ROUTE, InjectProcessFault(kind="disk-full"), ProcessFaultList)
    with pytest.raises(ClientError) as refused:
        ec2.create_volume(Size=1, AvailabilityZone=zone)
    error = refused.value.response["Error"]
    assert error["Code"] == "InsufficientVolumeCapacity" and "No space left on device" in error["Message"], error
    clear_processes(any_call(cloud))
    volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
             timeout=20, what=f"{volume} available")
