"""Elastic IPs end to end against real processes, with boto3 and the AWS CLI: allocate from a
four-address pool, associate (the instance's dynamic address goes back to the pool), move with
AllowReassociation, disassociate (a new dynamic address), release; every refusal EC2 gives,
with nothing changed; another account's address is not yours; the administrator's verbose
view of the whole pool; the metadata service shows the current public address."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.cloud import Cloud, running_cloud

FAST = {"Delay": 0.5, "MaxAttempts": 60}
POOL = "10.111.200.1-10.111.200.3, 10.111.201.9"
AWS = shutil.which("aws") or str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), nodes=1, VNET_PUBLICIPS=POOL) as c:
        yield c


@pytest.fixture
def ec2(cloud: Cloud):  # type: ignore[no-untyped-def]
    client = cloud.ec2()
    yield client
    # Leave the pool as each test found it: release what the test allocated, end its instances.
    for address in client.describe_addresses()["Addresses"]:
        if "AssociationId" in address:
            client.disassociate_address(AssociationId=address["AssociationId"])
        client.release_address(AllocationId=address["AllocationId"])
    live = [i["InstanceId"] for r in client.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")]
    if live:
        client.terminate_instances(InstanceIds=live)
        client.get_waiter("instance_terminated").wait(InstanceIds=live, WaiterConfig=FAST)


def error_code(call, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def run_one(cloud: Cloud, ec2) -> dict:  # type: ignore[no-untyped-def]
    image = cloud.register_image()
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=FAST)
    return describe(ec2, instance["InstanceId"])


def describe(ec2, instance_id: str) -> dict:  # type: ignore[no-untyped-def]
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]


def test_an_instance_gets_a_dynamic_address_and_an_elastic_one_replaces_it(cloud: Cloud, ec2) -> None:
    instance = run_one(cloud, ec2)
    dynamic = instance["PublicIpAddress"]
    assert dynamic == "10.111.200.1"
    allocated = ec2.allocate_address(Domain="standard")
    assert allocated["PublicIp"] == "10.111.200.2" and allocated["AllocationId"].startswith("eipalloc-")
    association = ec2.associate_address(InstanceId=instance["InstanceId"], PublicIp=allocated["PublicIp"])
    assert association["AssociationId"].startswith("eipassoc-")
    assert describe(ec2, instance["InstanceId"])["PublicIpAddress"] == allocated["PublicIp"]
    meta = cloud.metadata(instance["InstanceId"], "/latest/meta-data/public-ipv4")
    assert meta.text == allocated["PublicIp"]
    [shown] = ec2.describe_addresses(PublicIps=[allocated["PublicIp"]])["Addresses"]
    assert (shown["InstanceId"], shown["AssociationId"], shown["PrivateIpAddress"]) == (
        instance["InstanceId"], association["AssociationId"], instance["PrivateIpAddress"])
    # The dynamic address went back to the pool: the next allocation takes it.
    assert ec2.allocate_address()["PublicIp"] == dynamic
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    after = describe(ec2, instance["InstanceId"])["PublicIpAddress"]
    assert after == "10.111.200.3"  # a new dynamic one, from what is left
    assert "InstanceId" not in ec2.describe_addresses(PublicIps=[allocated["PublicIp"]])["Addresses"][0]


def test_reassociation_needs_allow_reassociation(cloud: Cloud, ec2) -> None:
    first, second = run_one(cloud, ec2), run_one(cloud, ec2)
    address = ec2.allocate_address()
    ec2.associate_address(InstanceId=first["InstanceId"], AllocationId=address["AllocationId"])
    assert error_code(ec2.associate_address, InstanceId=second["InstanceId"],
                      AllocationId=address["AllocationId"]) == "Resource.AlreadyAssociated"
    assert describe(ec2, first["InstanceId"])["PublicIpAddress"] == address["PublicIp"]
    ec2.associate_address(InstanceId=second["InstanceId"], AllocationId=address["AllocationId"],
                          AllowReassociation=True)
    assert describe(ec2, second["InstanceId"])["PublicIpAddress"] == address["PublicIp"]
    assert describe(ec2, first["InstanceId"])["PublicIpAddress"] != address["PublicIp"]


def test_refusals_change_nothing(cloud: Cloud, ec2) -> None:
    instance = run_one(cloud, ec2)
    address = ec2.allocate_address()
    ec2.associate_address(InstanceId=instance["InstanceId"], PublicIp=address["PublicIp"])
    before = ec2.describe_addresses()["Addresses"]
    assert error_code(ec2.release_address, PublicIp=address["PublicIp"]) == "InvalidIPAddress.InUse"
    assert error_code(ec2.release_address, PublicIp="10.9.9.9") == "InvalidAddress.NotFound"
    assert error_code(ec2.release_address, AllocationId="eipalloc-12345678") == "InvalidAllocationID.NotFound"
    assert error_code(ec2.associate_address, InstanceId="i-12345678",
                      PublicIp=address["PublicIp"]) == "InvalidInstanceID.NotFound"
    assert error_code(ec2.disassociate_address, AssociationId="eipassoc-1234") == "InvalidAssociationID.NotFound"
    assert error_code(ec2.release_address, PublicIp="not-an-ip") == "InvalidParameterValue"
    assert ec2.describe_addresses()["Addresses"] == before


def test_a_terminated_instance_cannot_take_an_address_and_gives_its_own_back(cloud: Cloud, ec2) -> None:
    instance = run_one(cloud, ec2)
    address = ec2.allocate_address()
    ec2.associate_address(InstanceId=instance["InstanceId"], PublicIp=address["PublicIp"])
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=FAST)
    assert error_code(ec2.associate_address, InstanceId=instance["InstanceId"],
                      PublicIp=address["PublicIp"]) == "InvalidInstanceID"
    [shown] = ec2.describe_addresses(AllocationIds=[address["AllocationId"]])["Addresses"]
    assert "InstanceId" not in shown
    ec2.release_address(AllocationId=address["AllocationId"])  # free again: nothing holds it


def test_the_pool_runs_out_with_address_limit_exceeded(cloud: Cloud, ec2) -> None:
    taken = [ec2.allocate_address()["PublicIp"] for _ in range(4)]
    assert sorted(taken) == sorted(["10.111.200.1", "10.111.200.2", "10.111.200.3", "10.111.201.9"])
    assert error_code(ec2.allocate_address) == "AddressLimitExceeded"
    assert len(ec2.describe_addresses()["Addresses"]) == 4


def test_another_accounts_address_is_not_yours_and_the_admin_sees_the_pool(cloud: Cloud, ec2) -> None:
    other = cloud.ec2(cloud.new_account("eip-other"))
    theirs = other.allocate_address()
    try:
        assert error_code(ec2.release_address, PublicIp=theirs["PublicIp"]) == "AuthFailure"
        assert error_code(ec2.release_address, AllocationId=theirs["AllocationId"]) == "InvalidAllocationID.NotFound"
        assert ec2.describe_addresses(Filters=[{"Name": "public-ip", "Values": [theirs["PublicIp"]]}])["Addresses"] == []
        verbose = {a["PublicIp"]: a["InstanceId"] for a in ec2.describe_addresses(PublicIps=["verbose"])["Addresses"]}
        assert set(verbose) == {"10.111.200.1", "10.111.200.2", "10.111.200.3", "10.111.201.9"}
        assert verbose[theirs["PublicIp"]].startswith("nobody (arn:aws:iam::")
        assert list(verbose.values()).count("available") == 3
        assert error_code(other.describe_addresses, PublicIps=["verbose"]) == "InvalidParameterValue"
    finally:
        other.release_address(AllocationId=theirs["AllocationId"])


def test_the_aws_cli_allocates_associates_and_releases(cloud: Cloud, ec2) -> None:
    instance = run_one(cloud, ec2)

    def aws(*args: str) -> dict:
        done = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=cloud.cli_env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    allocated = aws("allocate-address", "--tag-specifications",
                    "ResourceType=elastic-ip,Tags=[{Key=app,Value=tracker}]")
    aws("associate-address", "--instance-id", instance["InstanceId"], "--allocation-id", allocated["AllocationId"])
    [shown] = aws("describe-addresses", "--filters", "Name=tag:app,Values=tracker")["Addresses"]
    assert (shown["PublicIp"], shown["InstanceId"]) == (allocated["PublicIp"], instance["InstanceId"])
    aws("disassociate-address", "--public-ip", allocated["PublicIp"])
    aws("release-address", "--allocation-id", allocated["AllocationId"])
    assert aws("describe-addresses")["Addresses"] == []
