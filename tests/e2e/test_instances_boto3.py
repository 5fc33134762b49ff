"""Instances end to end with boto3 against real processes (CLC, Walrus, CC, a 3-node simulated
NC): launch with a key pair, a group and user data, wait for running, see the ROUNDROBIN
spread, read the console, the metadata and the user data as an instance, terminate, and see
the nodes' booked cores go back down. Another account sees none of it.

The instances most tests read are the module's (`launched`, left running); a test that changes
what others read (terminate) launches its own, and a test that launches waits until what it
launched is terminated, so the tests pass in any order."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.cloud import Cloud, running_cloud, wait_until

FAST = {"Delay": 0.5, "MaxAttempts": 60}
USER_DATA = "#!/bin/sh\necho hello from eucasim\n"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), nodes=3, SCHEDPOLICY="ROUNDROBIN") as c:
        yield c


@pytest.fixture(scope="module")
def images(cloud: Cloud) -> dict[str, str]:
    """A kernel, a ramdisk and a machine image naming them: bundled, uploaded and registered
    as a user does it; private to the admin account."""
    kernel = cloud.upload_image("kernel")
    ramdisk = cloud.upload_image("ramdisk")
    return {"kernel": kernel, "ramdisk": ramdisk,
            "machine": cloud.upload_image("machine", kernel_id=kernel, ramdisk_id=ramdisk)}


@pytest.fixture(scope="module")
def image(images: dict[str, str]) -> str:
    return images["machine"]


def _launch(cloud: Cloud, image: str, group_name: str, role: str) -> dict:
    """Three m1.small with the key pair e2e-key, a new group, user data and the tag role=`role`,
    running."""
    ec2 = cloud.ec2()
    group = ec2.create_security_group(GroupName=group_name, Description="web servers")["GroupId"]
    reservation = ec2.run_instances(
        ImageId=image, MinCount=3, MaxCount=3, InstanceType="m1.small", KeyName="e2e-key",
        SecurityGroups=[group_name], UserData=USER_DATA,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": role}]}])
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    return {"reservation": reservation, "ids": ids, "group": group}


@pytest.fixture(scope="module")
def key_pair(cloud: Cloud) -> str:
    cloud.ec2().create_key_pair(KeyName="e2e-key")
    return "e2e-key"


@pytest.fixture(scope="module")
def launched(cloud: Cloud, image: str, key_pair: str) -> dict:
    """The module's three instances in the group e2e-web, running until the module ends."""
    return _launch(cloud, image, "e2e-web", "web")


def _instances(response: dict) -> list[dict]:
    return [i for r in response["Reservations"] for i in r["Instances"]]


def _terminate(ec2: Any, ids: list[str]) -> None:
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)


def test_run_instances_answers_pending_with_everything_asked_for(launched: dict, images: dict):
    image = images["machine"]
    reservation = launched["reservation"]
    assert reservation["ReservationId"].startswith("r-")
    assert [g["GroupName"] for g in reservation["Groups"]] == ["e2e-web"]
    assert len(reservation["Instances"]) == 3
    for index, instance in enumerate(reservation["Instances"]):
        assert instance["InstanceId"].startswith("i-") and len(instance["InstanceId"]) == 10
        assert instance["State"] == {"Code": 0, "Name": "pending"}
        assert instance["ImageId"] == image and instance["KeyName"] == "e2e-key"
        assert (instance["KernelId"], instance["RamdiskId"]) == (images["kernel"], images["ramdisk"])
        assert instance["AmiLaunchIndex"] == index
        assert instance["Placement"]["AvailabilityZone"] == "zone-1"
        assert instance["PrivateIpAddress"].startswith("172.31.")
        assert instance["Tags"] == [{"Key": "role", "Value": "web"}]
    # One group, one private network: consecutive addresses in it.
    addresses = [i["PrivateIpAddress"] for i in reservation["Instances"]]
    assert len(set(addresses)) == 3


def test_instances_spread_round_robin_over_the_three_nodes(cloud: Cloud, launched: dict):
    placed = cloud.nodes_of(launched["ids"])
    assert sorted(placed.values()) == ["node-1", "node-2", "node-3"]
    # Each of them is booked on its node: every node has a core booked at least.
    assert all(cloud.booked_cores()[node] >= 1 for node in placed.values())


def test_describe_instances_reports_running_with_filters(cloud: Cloud, launched: dict):
    ec2 = cloud.ec2()
    ids = launched["ids"]
    found = _instances(ec2.describe_instances(InstanceIds=ids))
    assert {i["InstanceId"] for i in found} == set(ids)
    assert {i["State"]["Name"] for i in found} == {"running"}
    by_tag = _instances(ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["web"]}]))
    assert {i["InstanceId"] for i in by_tag} == set(ids)
    by_group = _instances(ec2.describe_instances(Filters=[
        {"Name": "instance.group-name", "Values": ["e2e-web"]},
        {"Name": "instance-state-name", "Values": ["running"]}]))
    assert {i["InstanceId"] for i in by_group} == set(ids)
    none = _instances(ec2.describe_instances(Filters=[{"Name": "instance-type", "Values": ["c1.xlarge"]}]))
    assert none == []
    # A state filter the database applies, one with a wildcard it leaves to the rows, and two
    # state filters at once (both must hold) answer alike.
    for states in ([{"Name": "instance-state-name", "Values": ["running", "pending"]}],
                   [{"Name": "instance-state-name", "Values": ["run*"]}],
                   [{"Name": "instance-state-name", "Values": ["running"]},
                    {"Name": "instance-state-code", "Values": ["16"]}]):
        assert {i["InstanceId"] for i in _instances(ec2.describe_instances(Filters=states))} >= set(ids)
    assert _instances(ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": ["stopped"]},
        {"Name": "instance.group-name", "Values": ["e2e-web"]}])) == []
    # The extras (groups, tokens) after a row filter: still every instance of the group.
    by_group_and_type = _instances(ec2.describe_instances(Filters=[
        {"Name": "instance-type", "Values": ["m1.small"]},
        {"Name": "group-name", "Values": ["e2e-web"]}, {"Name": "tag-key", "Values": ["role"]}]))
    assert {i["InstanceId"] for i in by_group_and_type} == set(ids)
    with pytest.raises(ClientError) as error:
        ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                        {"Name": "no-such-filter", "Values": ["x"]}])
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as error:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as error:
        ec2.describe_instances(InstanceIds=["i-00000000"])
    assert error.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_describe_instances_pages(cloud: Cloud, launched: dict):
    pages = list(cloud.ec2().get_paginator("describe_instances").paginate(
        PaginationConfig={"PageSize": 5}))
    seen = [i["InstanceId"] for page in pages for i in _instances(page)]
    assert set(launched["ids"]) <= set(seen) and len(seen) == len(set(seen))


def test_instance_status_and_attributes(cloud: Cloud, launched: dict):
    ec2 = cloud.ec2()
    first = launched["ids"][0]
    statuses = ec2.describe_instance_status(InstanceIds=[first])["InstanceStatuses"]
    assert statuses[0]["InstanceState"]["Name"] == "running"
    assert statuses[0]["InstanceStatus"]["Status"] == "ok"
    user_data = ec2.describe_instance_attribute(InstanceId=first, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == USER_DATA
    kind = ec2.describe_instance_attribute(InstanceId=first, Attribute="instanceType")
    assert kind["InstanceType"]["Value"] == "m1.small"
    groups = ec2.describe_instance_attribute(InstanceId=first, Attribute="groupSet")["Groups"]
    assert groups == [{"GroupId": launched["group"], "GroupName": "e2e-web"}]
    with pytest.raises(ClientError) as error:
        ec2.modify_instance_attribute(InstanceId=first, InstanceType={"Value": "m1.large"})
    assert error.value.response["Error"]["Code"] == "IncorrectInstanceState"
    with pytest.raises(ClientError) as error:
        ec2.stop_instances(InstanceIds=[first])
    assert error.value.response["Error"]["Code"] == "UnsupportedOperation"
    ec2.reboot_instances(InstanceIds=[first])
    # Groups may change on a running instance.
    third = launched["ids"][2]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.modify_instance_attribute(InstanceId=third, Groups=[launched["group"], default])
    changed = ec2.describe_instance_attribute(InstanceId=third, Attribute="groupSet")["Groups"]
    assert [g["GroupName"] for g in changed] == ["e2e-web", "default"]
    with pytest.raises(ClientError) as error:
        ec2.describe_instances(InstanceIds=[first], MaxResults=5)
    assert error.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_console_output_comes_back_base64_decoded_by_boto3(cloud: Cloud, launched: dict):
    first = launched["ids"][0]
    output = cloud.ec2().get_console_output(InstanceId=first)
    assert output["InstanceId"] == first
    assert f"RunInstance {first}" in output["Output"]


def test_metadata_and_user_data_as_the_instance(cloud: Cloud, launched: dict, image: str):
    first = launched["reservation"]["Instances"][0]
    iid = first["InstanceId"]
    listing = cloud.metadata(iid, "/latest/meta-data/").text.splitlines()
    assert {"ami-id", "instance-id", "local-ipv4", "placement/", "public-keys/"} <= set(listing)
    assert cloud.metadata(iid, "/latest/meta-data/instance-id").text == iid
    assert cloud.metadata(iid, "/latest/meta-data/ami-id").text == image
    assert cloud.metadata(iid, "/latest/meta-data/local-ipv4").text == first["PrivateIpAddress"]
    assert cloud.metadata(iid, "/latest/meta-data/placement/availability-zone").text == "zone-1"
    assert cloud.metadata(iid, "/latest/meta-data/security-groups").text == "e2e-web"
    assert cloud.metadata(iid, "/latest/meta-data/public-keys/").text == "0=e2e-key"
    key = cloud.metadata(iid, "/latest/meta-data/public-keys/0/openssh-key").text
    assert key.startswith("ssh-rsa ")
    assert cloud.metadata(iid, "/latest/meta-data/block-device-mapping/root").text == "/dev/sda1"
    assert cloud.metadata(iid, "/latest/meta-data/kernel-id").text == first["KernelId"]
    assert cloud.metadata(iid, "/latest/meta-data/ramdisk-id").text == first["RamdiskId"]
    assert cloud.metadata(iid, "/latest/user-data").text == USER_DATA
    document = json.loads(cloud.metadata(iid, "/latest/dynamic/instance-identity/document").text)
    assert document["instanceId"] == iid and document["imageId"] == image
    assert document["accountId"] == cloud.admin.account_id
    assert cloud.metadata(iid, "/latest/meta-data/no-such-thing").status_code == 404


def test_imdsv2_tokens(cloud: Cloud, launched: dict):
    first, second = launched["ids"][:2]
    token = cloud.metadata(first, "/latest/api/token", "PUT",
                           {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert token.status_code == 200
    assert token.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "60"
    good = cloud.metadata(first, "/latest/meta-data/instance-id",
                          headers={"X-aws-ec2-metadata-token": token.text})
    assert good.status_code == 200 and good.text == first
    # A token is the instance's own, and a made-up one is refused.
    stolen = cloud.metadata(second, "/latest/meta-data/instance-id",
                            headers={"X-aws-ec2-metadata-token": token.text})
    assert stolen.status_code == 401
    assert cloud.metadata(first, "/latest/meta-data/", headers={
        "X-aws-ec2-metadata-token": "forged"}).status_code == 401
    assert cloud.metadata(first, "/latest/api/token", "PUT").status_code == 400
    assert cloud.metadata(first, "/latest/api/token", "PUT", {
        "X-aws-ec2-metadata-token-ttl-seconds": "21601"}).status_code == 400


def test_metadata_refuses_callers_that_are_no_instance(cloud: Cloud, launched: dict):
    assert cloud.metadata("i-00000000", "/latest/meta-data/instance-id").status_code == 404


def test_client_token_makes_run_instances_idempotent(cloud: Cloud, image: str):
    ec2 = cloud.ec2()
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="e2e-once")
    again = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="e2e-once")
    assert again["ReservationId"] == first["ReservationId"]
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    _terminate(ec2, [i["InstanceId"] for i in first["Instances"]])


def test_bad_requests_get_ec2s_errors_and_launch_nothing(cloud: Cloud, image: str):
    ec2 = cloud.ec2()
    before = len(_instances(ec2.describe_instances()))
    cases = [
        ({"ImageId": "emi-00000000"}, "InvalidAMIID.NotFound"),
        ({"ImageId": "bogus"}, "InvalidAMIID.Malformed"),
        ({"ImageId": image, "InstanceType": "m9.huge"}, "InvalidParameterValue"),
        ({"ImageId": image, "KeyName": "no-such-key"}, "InvalidKeyPair.NotFound"),
        ({"ImageId": image, "SecurityGroups": ["no-such-group"]}, "InvalidGroup.NotFound"),
        ({"ImageId": image, "Placement": {"AvailabilityZone": "zone-9"}}, "InvalidParameterValue"),
    ]
    for extra, code in cases:
        with pytest.raises(ClientError) as error:
            ec2.run_instances(MinCount=1, MaxCount=1, **extra)
        assert error.value.response["Error"]["Code"] == code, extra
    with pytest.raises(ClientError) as error:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, DryRun=True)
    assert error.value.response["Error"]["Code"] == "DryRunOperation"
    assert len(_instances(ec2.describe_instances())) == before


def test_another_account_sees_and_touches_nothing(cloud: Cloud, launched: dict, images: dict):
    image = images["machine"]
    other_key = cloud.new_account("e2e-other")
    other = cloud.ec2(other_key)
    first = launched["ids"][0]
    assert _instances(other.describe_instances()) == []
    for call in (lambda: other.describe_instances(InstanceIds=[first]),
                 lambda: other.terminate_instances(InstanceIds=[first]),
                 lambda: other.get_console_output(InstanceId=first),
                 lambda: other.create_tags(Resources=[first], Tags=[{"Key": "x", "Value": "y"}])):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as error:
        other.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert error.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    # Still running for its owner.
    mine = _instances(cloud.ec2().describe_instances(InstanceIds=[first]))
    assert mine[0]["State"]["Name"] == "running"
    # Once shared, the other account may launch it, into its own account.
    for shared in images.values():
        cloud.ec2().modify_image_attribute(ImageId=shared, LaunchPermission={
            "Add": [{"UserId": other_key.account_id}]})
    theirs = other.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert theirs not in {i["InstanceId"] for i in _instances(cloud.ec2().describe_instances())}
    _terminate(other, [theirs])


def test_terminate_frees_every_node(cloud: Cloud, image: str, key_pair: str):
    ec2 = cloud.ec2()
    mine = _launch(cloud, image, "e2e-terminate", "doomed")
    ids = mine["ids"]
    assert sorted(cloud.nodes_of(ids).values()) == ["node-1", "node-2", "node-3"]
    # A group with live instances in it cannot go.
    with pytest.raises(ClientError) as in_use:
        ec2.delete_security_group(GroupId=mine["group"])
    assert in_use.value.response["Error"]["Code"] == "InvalidGroup.InUse"
    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {c["PreviousState"]["Name"] for c in changes} == {"running"}
    assert {c["CurrentState"]["Name"] for c in changes} == {"shutting-down"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    found = _instances(ec2.describe_instances(InstanceIds=ids))
    assert {i["StateReason"]["Code"] for i in found} == {"Client.UserInitiatedShutdown"}
    assert all(i["StateTransitionReason"].startswith("User initiated (") for i in found)
    # Every node books the cores of the instances it still runs (others' too), and no more.
    wait_until(lambda: cloud.booked_cores() == cloud.live_cores(), timeout=30,
               what="every node's booked cores back to those of its live instances")
    assert not set(ids) & set(cloud.nodes_of(ids, live=True))
    # Terminated instances stay visible (for an hour), and terminating again changes nothing.
    again = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {c["CurrentState"]["Name"] for c in again} == {"terminated"}
    # Their metadata is gone with them.
    assert cloud.metadata(ids[0], "/latest/meta-data/instance-id").status_code == 404
    # Once its instances are terminated, the group can be deleted.
    ec2.delete_security_group(GroupId=mine["group"])


def test_a_terminated_instance_leaves_the_zone_and_users_still_see_it_terminated(
        cloud: Cloud, image: str, key_pair: str):
    """The NC forgets an instance the CC has seen end (30 s later) and the CC forgets it once
    the CLC has heard; the CLC keeps it for users as EC2 does (an hour), with its reason."""
    ec2 = cloud.ec2()
    ids = _launch(cloud, image, "e2e-forgotten", "forgotten")["ids"]
    _terminate(ec2, ids)
    wait_until(lambda: not set(ids) & {i.instance_id for i in cloud.zone_instances().instances},
               timeout=120, what="the zone to forget the terminated instances")
    found = _instances(ec2.describe_instances(InstanceIds=ids))
    assert sorted(i["InstanceId"] for i in found) == sorted(ids)
    assert {i["State"]["Name"] for i in found} == {"terminated"}
    assert {i["StateReason"]["Code"] for i in found} == {"Client.UserInitiatedShutdown"}


def test_the_run_instances_request_can_be_traced_through_clc_cc_and_nc(cloud: Cloud, launched: dict):
    from services.cli_trace import gather

    request_id = launched["reservation"]["ResponseMetadata"]["RequestId"]
    steps, _ = gather(cloud.config, request_id)
    services = {step.service for step in steps}
    assert {"clc", "cc", "nc"} <= services, [(s.service, s.kind, s.what) for s in steps]
    assert any(step.kind == "decided" and step.service == "cc" for step in steps)
