"""Races, against the whole cloud as `make up` starts it: many clients (threads, each with its
own boto3 client) fire the same request at the same moment (a barrier), over several rounds.
Two CreateTags on one key never answer 500; concurrent CompleteMultipartUpload (and a part
replaced meanwhile) never lose the object or a part's bytes; of concurrent attaches of one
volume exactly one wins and the rest get VolumeInUse; concurrent associations of one elastic IP
end with the last one everywhere — EC2's answer, the instances and the CC's network plan; a
launch some nodes refuse runs at least MinCount or is rolled back whole, with its reason."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from services.internal import InternalClient
from services.messages.network import CC_NETWORK_ROUTE, NetworkPlanView
from services.messages.node import NC_SLEEP_ROUTE
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

FAST = {"Delay": 0.5, "MaxAttempts": 120}
CLIENTS = 8
POOL = "10.111.210.1-10.111.210.9"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("races"), nodes=2, VNET_PUBLICIPS=POOL,
                       SC_MAX_STORAGE=200) as c:
        yield c


@pytest.fixture(scope="module")
def image(cloud: Cloud) -> str:
    return cloud.register_image()


@pytest.fixture(scope="module")
def instances(cloud: Cloud, image: str) -> list[str]:
    """Four running instances the tests share."""
    ec2 = cloud.ec2()
    found = ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4, InstanceType="m1.small")["Instances"]
    ids = [i["InstanceId"] for i in found]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    return ids


def at_once(calls: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run the calls in threads released together; each answer as ("ok", value) or
    (error code, HTTP status) for a ClientError. Anything else fails the test."""
    barrier = threading.Barrier(len(calls))
    answers: list[tuple[str, Any]] = [("unset", None)] * len(calls)
    crashes: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            answers[index] = ("ok", call())
        except ClientError as exc:
            answers[index] = (exc.response["Error"]["Code"],
                              exc.response["ResponseMetadata"]["HTTPStatusCode"])
        except BaseException as exc:  # noqa: BLE001 - reported below, on the test's thread
            crashes.append(exc)

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not crashes, crashes
    return answers


def ec2_clients(cloud: Cloud, count: int = CLIENTS) -> list[Any]:
    return [cloud.ec2() for _ in range(count)]


def s3_client(cloud: Cloud) -> Any:
    return boto3.client("s3", endpoint_url=cloud.config.service_url("walrus"),
                        region_name=cloud.config.REGION, aws_access_key_id=cloud.admin.access_key,
                        aws_secret_access_key=cloud.admin.secret_key,
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def server_errors(answers: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [a for a in answers if a[0] != "ok" and int(a[1]) >= 500]


# ---------------------------------------------------------------------------- CreateTags

def test_concurrent_create_tags_on_one_key_never_answer_500(cloud: Cloud) -> None:
    clients = ec2_clients(cloud)
    group = clients[0].create_security_group(GroupName="races-tags", Description="tags")["GroupId"]
    for round_ in range(4):
        keys = [f"race-{round_}-{k}" for k in range(10)]
        answers = at_once([
            (lambda c=c, n=n: c.create_tags(Resources=[group], Tags=[{"Key": k, "Value": f"v{n}"}
                                                                     for k in keys]))
            for n, c in enumerate(clients)])
        assert [a for a in answers if a[0] != "ok"] == [], answers
        tags = clients[0].describe_tags(Filters=[{"Name": "resource-id", "Values": [group]},
                                                 {"Name": "key", "Values": keys}])["Tags"]
        assert sorted(t["Key"] for t in tags) == sorted(keys)
        assert {t["Value"] for t in tags} <= {f"v{n}" for n in range(CLIENTS)}


# ------------------------------------------------------------- RunInstances' ClientToken

def test_concurrent_launches_with_one_client_token_make_one_reservation(cloud: Cloud, image: str) -> None:
    """What boto3 does when a RunInstances times out: it sends it again with the same token,
    while the first may still be on its way (benchmarks/load_mixed.py saw a 500 from that)."""
    # Each call sent once: boto3's own retry would repair a 500 and hide it.
    clients = [boto3.client("ec2", endpoint_url=cloud.clc_url, region_name=cloud.config.REGION,
                            aws_access_key_id=cloud.admin.access_key,
                            aws_secret_access_key=cloud.admin.secret_key,
                            config=Config(retries={"total_max_attempts": 1})) for _ in range(4)]
    for _ in range(3):
        token = f"race-{uuid.uuid4()}"
        answers = at_once([(lambda c=c: c.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                                         ClientToken=token)) for c in clients])
        assert [a for a in answers if a[0] != "ok"] == [], answers
        launched = {(a[1]["ReservationId"], a[1]["Instances"][0]["InstanceId"]) for a in answers}
        assert len(launched) == 1, launched
        [(reservation, instance)] = launched
        found = clients[0].describe_instances(Filters=[{"Name": "reservation-id", "Values": [reservation]}])
        assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [instance]
        clients[0].terminate_instances(InstanceIds=[instance])


# --------------------------------------------------------------------- multipart uploads

def test_concurrent_completes_of_one_upload_keep_the_object_and_its_parts(cloud: Cloud) -> None:
    s3 = [s3_client(cloud) for _ in range(CLIENTS)]
    s3[0].create_bucket(Bucket="races-multipart")
    first = b"\x01" * (5 * 1024 * 1024)
    for round_ in range(4):
        key = f"object-{round_}"
        second = f"round {round_} tail".encode() * 100
        upload = s3[0].create_multipart_upload(Bucket="races-multipart", Key=key)["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3[0].upload_part(
            Bucket="races-multipart", Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]}
            for n, body in ((1, first), (2, second))]
        answers = at_once([
            (lambda c=c: c.complete_multipart_upload(Bucket="races-multipart", Key=key, UploadId=upload,
                                                     MultipartUpload={"Parts": parts}))
            for c in s3])
        assert not server_errors(answers), answers
        assert any(a[0] == "ok" for a in answers), answers
        assert {a[0] for a in answers} <= {"ok", "NoSuchUpload"}, answers
        body = s3[0].get_object(Bucket="races-multipart", Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(first + second).digest()


def test_a_part_replaced_while_the_upload_completes_loses_nothing(cloud: Cloud) -> None:
    s3 = [s3_client(cloud) for _ in range(2)]
    s3[0].create_bucket(Bucket="races-replace")
    old, new = b"\x02" * (5 * 1024 * 1024), b"\x03" * (5 * 1024 * 1024)
    tail = b"tail" * 64
    for round_ in range(6):
        key = f"object-{round_}"
        upload = s3[0].create_multipart_upload(Bucket="races-replace", Key=key)["UploadId"]
        parts = [{"PartNumber": n, "ETag": s3[0].upload_part(
            Bucket="races-replace", Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]}
            for n, body in ((1, old), (2, tail))]
        complete, replace = at_once([
            lambda: s3[0].complete_multipart_upload(Bucket="races-replace", Key=key, UploadId=upload,
                                                    MultipartUpload={"Parts": parts}),
            lambda: s3[1].upload_part(Bucket="races-replace", Key=key, UploadId=upload,
                                      PartNumber=1, Body=new)])
        assert not server_errors([complete, replace]), (complete, replace)
        if complete[0] == "ok":
            # The object is what the completion named, byte for byte, however the replacement went.
            body = s3[0].get_object(Bucket="races-replace", Key=key)["Body"].read()
            assert body == old + tail
        else:  # the replacement came first: the listed ETag no longer names part 1
            assert complete[0] == "InvalidPart" and replace[0] == "ok", (complete, replace)
            s3[0].abort_multipart_upload(Bucket="races-replace", Key=key, UploadId=upload)


# --------------------------------------------------------------------------- AttachVolume

def test_of_concurrent_attaches_of_one_volume_exactly_one_wins(cloud: Cloud, instances: list[str]) -> None:
    clients = ec2_clients(cloud)
    ec2 = clients[0]
    zone = ec2.describe_instances(InstanceIds=instances[:1])["Reservations"][0]["Instances"][0][
        "Placement"]["AvailabilityZone"]
    for _round in range(3):
        volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
        ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
        answers = at_once([
            (lambda c=c, n=n: c.attach_volume(VolumeId=volume, InstanceId=instances[n % len(instances)],
                                              Device=f"/dev/sd{'fghijklm'[n]}"))
            for n, c in enumerate(clients)])
        won = [a for a in answers if a[0] == "ok"]
        assert len(won) == 1, answers
        assert sorted({a[0] for a in answers if a[0] != "ok"}) == ["VolumeInUse"], answers
        winner = won[0][1]
        attached = wait_for(lambda: (v := ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0])[
            "State"] == "in-use" and v["Attachments"][0]["State"] == "attached" and v, 60, "attached")
        [attachment] = attached["Attachments"]
        assert (attachment["InstanceId"], attachment["Device"]) == (winner["InstanceId"], winner["Device"])
        # The nodes hold the volume once, on the winner's instance only.
        holders = wait_for(lambda: [i.instance_id for i in cloud.zone_instances().instances
                                    if volume in [v.volume_id for v in i.volumes]] or None, 30, "node report")
        assert holders == [winner["InstanceId"]]
        ec2.detach_volume(VolumeId=volume)
        ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
        ec2.delete_volume(VolumeId=volume)


# ------------------------------------------------------------------------ AssociateAddress

def network_plan(cloud: Cloud) -> NetworkPlanView:
    client = cloud.internal("cc")
    try:
        return client.call("GET", CC_NETWORK_ROUTE, response=NetworkPlanView)  # type: ignore[no-any-return]
    finally:
        client.close()


def test_concurrent_associations_of_one_address_end_with_one_holder_everywhere(
        cloud: Cloud, instances: list[str]) -> None:
    clients = ec2_clients(cloud)
    ec2 = clients[0]
    address = ec2.allocate_address()
    public_ip = address["PublicIp"]
    try:
        for _round in range(4):
            answers = at_once([
                (lambda c=c, n=n: c.associate_address(AllocationId=address["AllocationId"],
                                                      InstanceId=instances[n % len(instances)],
                                                      AllowReassociation=True))
                for n, c in enumerate(clients)])
            assert [a for a in answers if a[0] != "ok"] == [], answers
            [described] = ec2.describe_addresses(AllocationIds=[address["AllocationId"]])["Addresses"]
            holder = described["InstanceId"]
            # The association EC2 reports is one a client was answered with: the last one.
            assert described["AssociationId"] in {a[1]["AssociationId"] for a in answers}
            shown = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=instances)[
                "Reservations"] for i in r["Instances"]}
            assert [i for i, d in shown.items() if d.get("PublicIpAddress") == public_ip] == [holder]
            private = shown[holder]["PrivateIpAddress"]

            def settled() -> bool:
                plan = network_plan(cloud)
                dnat = [line for line in plan.iptables.splitlines()
                        if line.startswith("-A EUCA-PREROUTING") and f"-d {public_ip}/32 -j DNAT" in line]
                leases = [lease.instance_id for lease in plan.leases if lease.public_ip == public_ip]
                return dnat == [f"-A EUCA-PREROUTING -d {public_ip}/32 -j DNAT --to-destination {private}"] \
                    and leases == [holder]
            wait_for(settled, 30, f"the CC's plan to give {public_ip} to {holder} alone")
    finally:
        [described] = ec2.describe_addresses(AllocationIds=[address["AllocationId"]])["Addresses"]
        if "AssociationId" in described:
            ec2.disassociate_address(AssociationId=described["AssociationId"])
        ec2.release_address(AllocationId=address["AllocationId"])


# --------------------------------------------------------------- launches nodes refuse

def test_a_launch_some_nodes_refuse_runs_min_count_or_is_rolled_back_with_its_reason(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A node put to sleep behind the CC's back (it polls once a minute here, so it still
    counts the node up) refuses what the CC places on it. Each of several concurrent launches
    then either runs at least MinCount or ends wholly terminated, each instance with a reason."""
    with running_cloud(tmp_path, nodes=2, NC_POLLING_FREQUENCY=60) as cloud:
        image = cloud.register_image()
        client = InternalClient(f"{cloud.config.service_url('nc')}/node-2", cloud.config.CLOUD_SECRET)
        try:
            client.call("POST", NC_SLEEP_ROUTE)
        finally:
            client.close()
        clients = ec2_clients(cloud, 4)
        answers = at_once([
            (lambda c=c: c.run_instances(ImageId=image, MinCount=2, MaxCount=3, InstanceType="m1.small"))
            for c in clients])
        assert [a for a in answers if a[0] != "ok"] == [], answers
        ec2 = clients[0]
        for _code, reservation in answers:
            ids = [i["InstanceId"] for i in reservation["Instances"]]

            def settled() -> list[dict] | None:
                found = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                         for i in r["Instances"]]
                done = all(i["State"]["Name"] in ("running", "terminated") for i in found)
                return found if done else None
            found = wait_for(settled, 60, f"{reservation['ReservationId']} settled")
            running = [i for i in found if i["State"]["Name"] == "running"]
            if len(running) < 2:
                assert running == [], found
                assert all(i.get("StateReason", {}).get("Message") for i in found), found
        # What the nodes hold agrees: nothing a rolled-back launch started still runs there.
        running_ids = {i["InstanceId"] for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]}
        wait_for(lambda: {i.instance_id for i in cloud.zone_instances().instances
                          if i.state == "running"} == running_ids, 30, "the nodes to agree")
