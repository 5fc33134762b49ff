"""Small things a new user tripped on, tried as that user did: a terminated instance's
addresses, the ClientToken of a reservation, `eucasim trace` of an unknown id and `eucasim
status` through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import Cloud, running_cloud

EUCASIM = str(Path(sys.executable).parent / "eucasim")
FAST = {"Delay": 0.5, "MaxAttempts": 60}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), nodes=1,
                       VNET_PUBLICIPS="10.99.0.1-10.99.0.9") as c:
        yield c


@pytest.fixture(scope="module")
def image(cloud: Cloud) -> str:
    return cloud.register_image()


def _instance(ec2, instance_id: str) -> dict:  # noqa: ANN001 (a boto3 client)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_a_terminated_instance_drops_its_addresses_and_the_next_launch_may_have_them(cloud: Cloud, image: str):
    ec2 = cloud.ec2()
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[first], WaiterConfig=FAST)
    running = _instance(ec2, first)
    private, public = running["PrivateIpAddress"], running["PublicIpAddress"]
    ec2.terminate_instances(InstanceIds=[first])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[first], WaiterConfig=FAST)

    gone = _instance(ec2, first)
    assert "PrivateIpAddress" not in gone and "PublicIpAddress" not in gone, gone
    assert gone["PrivateDnsName"] == "" and gone["PublicDnsName"] == ""
    for name, value in (("private-ip-address", private), ("ip-address", public)):
        found = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])["Reservations"]
        assert first not in [i["InstanceId"] for r in found for i in r["Instances"]]

    # The lowest free address goes to the next launch: the one the terminated instance had.
    second = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    try:
        assert second["PrivateIpAddress"] == private
        found = ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [private]}])
        assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == \
            [second["InstanceId"]]
    finally:
        ec2.terminate_instances(InstanceIds=[second["InstanceId"]])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[second["InstanceId"]], WaiterConfig=FAST)


def test_every_instance_of_a_reservation_carries_its_client_token(cloud: Cloud, image: str):
    ec2 = cloud.ec2()
    ran = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, ClientToken="every-one")
    ids = [i["InstanceId"] for i in ran["Instances"]]
    try:
        assert [i["ClientToken"] for i in ran["Instances"]] == ["every-one", "every-one"]
        described = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]
        assert [i["ClientToken"] for i in described] == ["every-one", "every-one"]
        # The second alone: its row does not hold the token, the reservation's first does.
        alone = ec2.describe_instances(InstanceIds=[ids[1]])["Reservations"][0]["Instances"]
        assert [i["ClientToken"] for i in alone] == ["every-one"]
        by_token = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": ["every-one"]}])
        assert sorted(i["InstanceId"] for r in by_token["Reservations"] for i in r["Instances"]) == sorted(ids)
        # A retry with the token answers the same reservation, token on each again.
        again = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, ClientToken="every-one")
        assert [i["ClientToken"] for i in again["Instances"]] == ["every-one", "every-one"]
    finally:
        ec2.terminate_instances(InstanceIds=ids)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)


def _eucasim(cloud: Cloud, *args: str) -> subprocess.CompletedProcess[str]:
    """An `eucasim` command as a user types it, its output through a pipe (no COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update({name: str(getattr(cloud.config, name)) for name in
                ("CLC_PORT", "WALRUS_PORT", "SC_PORT", "CC_PORT", "NC_PORT", "CLOUD_SECRET")})
    return subprocess.run([EUCASIM, *args, "--home", str(cloud.home)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_eucasim_trace_exits_non_zero_for_an_unknown_request_and_zero_for_a_known_one(cloud: Cloud):
    unknown = _eucasim(cloud, "trace", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode != 0, unknown.stdout
    assert "No service remembers request" in unknown.stdout
    request_id = cloud.ec2().describe_availability_zones()["ResponseMetadata"]["RequestId"]
    known = _eucasim(cloud, "trace", request_id)
    assert known.returncode == 0, known.stdout + known.stderr
    assert request_id in known.stdout


def test_eucasim_status_through_a_pipe_shows_whole_ids_and_urls(cloud: Cloud, image: str):
    ec2 = cloud.ec2()
    ids = [i["InstanceId"] for i in
           ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
        shown = _eucasim(cloud, "status")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert ids[0] in shown.stdout, shown.stdout
        account = cloud.admin.account_id
        assert account in shown.stdout
        for node in cloud.nodes().nodes:
            assert node.url in shown.stdout, shown.stdout
        assert "…" not in shown.stdout, shown.stdout
    finally:
        ec2.terminate_instances(InstanceIds=ids)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
