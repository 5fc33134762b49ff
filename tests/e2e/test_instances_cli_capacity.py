"""Instances through the AWS CLI against real processes, and capacity as the CC counts it:
run-instances, wait instance-running, describe-instances --filters, terminate-instances; one
node with MAX_CORES=2 refuses a c1.xlarge, refuses MinCount=3 m1.small whole and starts two
of MinCount=1 MaxCount=3."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import typer
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from services.cli_status import status

from tests.support.cloud import Cloud, running_cloud, wait_until

AWS = str(Path(sys.executable).parent / "aws")
FAST = {"Delay": 0.5, "MaxAttempts": 60}


@contextmanager
def small_cloud(home: Path) -> Iterator[Cloud]:
    # One small node: 2 cores is room for two m1.small and no c1.xlarge (4 cores).
    # Public addresses on loopback: the first instance's is 127.0.0.1, the address this test
    # calls from, so the metadata service knows it by source address as it would on a real host.
    with running_cloud(home, nodes=1, MAX_CORES=2, VNET_PUBLICIPS="127.0.0.1-127.0.0.9") as c:
        yield c


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """Shared by the tests that leave its node up and empty."""
    with small_cloud(tmp_path_factory.mktemp("cloud")) as c:
        yield c


@pytest.fixture(scope="module")
def image(cloud: Cloud) -> str:
    return cloud.register_image()


def _empty_node(cloud: Cloud) -> None:
    """What the tests before left behind has reached the CC: no core booked."""
    wait_until(lambda: set(cloud.booked_cores().values()) == {0}, what="an empty node")


def aws(cloud: Cloud, *args: str) -> dict:
    result = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=cloud.cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def aws_error(cloud: Cloud, *args: str) -> str:
    result = subprocess.run([AWS, "ec2", *args], env=cloud.cli_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    return result.stderr


def _status(cloud: Cloud) -> str:
    """`eucasim status` for this cloud, its output as text."""
    app = typer.Typer()
    app.command()(status)
    env = {name: str(getattr(cloud.config, name)) for name in
           ("CLC_PORT", "WALRUS_PORT", "SC_PORT", "CC_PORT", "NC_PORT", "CLOUD_SECRET")}
    result = CliRunner().invoke(app, ["--home", str(cloud.home)], env={**env, "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def _wait_state(cloud: Cloud, instance_id: str, state: str) -> None:
    def reached() -> bool:
        reservations = cloud.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"] == state
    wait_until(reached, timeout=30, what=f"{instance_id} {state}")


def test_the_aws_cli_runs_describes_and_terminates(cloud: Cloud, image: str):
    _empty_node(cloud)  # and so no instance holds 127.0.0.1
    ran = aws(cloud, "run-instances", "--image-id", image, "--instance-type", "m1.small",
              "--count", "1", "--user-data", "from the cli")
    instance_id = ran["Instances"][0]["InstanceId"]
    assert ran["Instances"][0]["State"]["Name"] == "pending"
    # The CLI's waiter sleeps 15 s between polls; let it find the instance running on its first.
    _wait_state(cloud, instance_id, "running")
    aws(cloud, "wait", "instance-running", "--instance-ids", instance_id)
    found = aws(cloud, "describe-instances", "--filters",
                f"Name=instance-id,Values={instance_id}", "Name=instance-state-name,Values=running")
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [instance_id]
    assert ran["Instances"][0]["PublicIpAddress"] == "127.0.0.1"
    # No instance header: the caller is known by its address alone.
    by_address = httpx.get(f"{cloud.clc_url}/latest/meta-data/instance-id", timeout=10)
    assert by_address.status_code == 200 and by_address.text == instance_id
    assert httpx.get(f"{cloud.clc_url}/latest/user-data", timeout=10).text == "from the cli"
    gone = aws(cloud, "terminate-instances", "--instance-ids", instance_id)
    assert gone["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    _wait_state(cloud, instance_id, "terminated")
    aws(cloud, "wait", "instance-terminated", "--instance-ids", instance_id)
    assert "InvalidInstanceID.NotFound" in aws_error(cloud, "terminate-instances", "--instance-ids",
                                                     "i-00000000")


def test_capacity_in_describe_availability_zones_verbose(cloud: Cloud):
    _empty_node(cloud)
    zones = cloud.ec2().describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    lines = {z["ZoneName"]: z["State"] for z in zones}
    assert lines["|- m1.small"].split()[:3] == ["0002", "/", "0002"]
    assert lines["|- c1.xlarge"].split()[:3] == ["0000", "/", "0000"]


def test_a_type_larger_than_any_node_is_refused(cloud: Cloud, image: str):
    with pytest.raises(ClientError) as error:
        cloud.ec2().run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="c1.xlarge")
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"


def test_min_count_beyond_capacity_is_refused_whole(cloud: Cloud, image: str):
    _empty_node(cloud)
    ec2 = cloud.ec2()
    before = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    with pytest.raises(ClientError) as error:
        ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3, InstanceType="m1.small")
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    after = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert after == before
    assert set(cloud.booked_cores().values()) == {0}


def test_min_one_max_three_starts_the_two_that_fit(cloud: Cloud, image: str):
    _empty_node(cloud)
    ec2 = cloud.ec2()
    ran = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=3, InstanceType="m1.small")
    ids = [i["InstanceId"] for i in ran["Instances"]]
    assert len(ids) == 2
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    assert cloud.booked_cores() == {"node-1": 2}
    shown = _status(cloud)
    assert "2 / 2" in shown and all(i in shown for i in ids)
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    wait_until(lambda: cloud.booked_cores() == {"node-1": 0}, what="the node's cores freed")


def test_an_instance_whose_node_goes_down_says_so(tmp_path: Path):
    # Its own cloud: the node it takes down is gone for good.
    with small_cloud(tmp_path / "cloud") as cloud:
        _node_goes_down(cloud, cloud.register_image())


def _node_goes_down(cloud: Cloud, image: str) -> None:
    ec2 = cloud.ec2()
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    nc = next(s for s in cloud.services if s.spec.name == "nc")
    nc.process.kill()  # the node's host loses power
    nc.process.wait(10)

    def reason() -> str:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        assert found["State"]["Name"] == "running"  # its last report; the zone cannot know more
        return str(found.get("StateReason", {}).get("Message", ""))
    message = wait_until(lambda: "is down" in reason() and reason(), timeout=30, what="the node-down reason")
    assert message.startswith("node node-1 is down")
