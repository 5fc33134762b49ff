"""One account cannot reach into another's: for every kind of resource account A owns
(instance, image, volume, snapshot, address, security group, key pair, bucket, object) and each
way account B could read or change it, B gets AWS's answer for something that is not there or
not B's, and A's resource is as it was. Sharing opens exactly what it says: an image's launch
permission, a snapshot's createVolumePermission, an S3 grant.

tests/clc/test_isolation.py already tries key pairs and security groups through their own
actions (describe, delete, tags, rules); here they appear where another action names them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from services.messages.identity import AccessKeyInfo
from tests.support.cloud import Cloud
from tests.support.waiting import wait_for

FAST = {"Delay": 0.5, "MaxAttempts": 120}
BODY = b"account A's object " * 64


@dataclass
class Account:
    key: AccessKeyInfo
    ec2: Any
    s3: Any

    @property
    def id(self) -> str:
        return self.key.account_id


def _account(cloud: Cloud, name: str) -> Account:
    key = cloud.new_account(f"{name}-{secrets.token_hex(3)}")
    s3 = boto3.client("s3", endpoint_url=cloud.config.service_url("walrus"), region_name=cloud.config.REGION,
                      aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                      config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    return Account(key, cloud.ec2(key), s3)


@pytest.fixture(scope="module")
def a(isolation_cloud: Cloud) -> Account:
    return _account(isolation_cloud, "acct-a")


@pytest.fixture(scope="module")
def b(isolation_cloud: Cloud) -> Account:
    return _account(isolation_cloud, "acct-b")


@pytest.fixture(scope="module")
def theirs(isolation_cloud: Cloud, a: Account) -> dict[str, str]:
    """A's resources, one of each kind: a private image of A's own, a running instance of it
    with a key pair, a group, a tag and an elastic IP, a volume and a snapshot of it, a bucket
    and an object in it."""
    cloud, ec2 = isolation_cloud, a.ec2
    image = cloud.register_image(owner=a.key, public=False, bucket=f"images-{a.id}")
    key = ec2.create_key_pair(KeyName="a-key", KeyType="ed25519")["KeyPairId"]
    group = ec2.create_security_group(GroupName="a-group", Description="A's")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="a-key",
                                   SecurityGroupIds=[group], TagSpecifications=[
                                       {"ResourceType": "instance", "Tags": [{"Key": "owner", "Value": "a"}]}],
                                   )["Instances"]
    zone = instance["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    bucket = f"acct-a-{secrets.token_hex(4)}"
    a.s3.create_bucket(Bucket=bucket)
    a.s3.put_object(Bucket=bucket, Key="private.txt", Body=BODY)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=FAST)
    address = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=address["AllocationId"],
                                        InstanceId=instance["InstanceId"])["AssociationId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot], WaiterConfig=FAST)
    return {"image": image, "instance": instance["InstanceId"], "zone": zone, "volume": volume,
            "snapshot": snapshot, "public_ip": address["PublicIp"],
            "allocation": address["AllocationId"], "association": association, "key": key,
            "group": group, "bucket": bucket, "object": "private.txt"}


def _view(a: Account, t: dict[str, str]) -> dict[str, Any]:
    """Everything of A's that B's attempts could change, as A sees it."""
    ec2, s3 = a.ec2, a.s3
    [instance] = ec2.describe_instances(InstanceIds=[t["instance"]])["Reservations"][0]["Instances"]
    [image] = ec2.describe_images(ImageIds=[t["image"]])["Images"]
    [volume] = ec2.describe_volumes(VolumeIds=[t["volume"]])["Volumes"]
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[t["snapshot"]])["Snapshots"]
    [address] = ec2.describe_addresses(AllocationIds=[t["allocation"]])["Addresses"]
    [group] = ec2.describe_security_groups(GroupIds=[t["group"]])["SecurityGroups"]
    body = s3.get_object(Bucket=t["bucket"], Key=t["object"])["Body"].read()
    return {
        "instance": (instance["State"]["Name"], instance.get("PublicIpAddress"), instance["Tags"],
                     instance["KeyName"], [g["GroupId"] for g in instance["SecurityGroups"]],
                     ec2.describe_instance_attribute(InstanceId=t["instance"],
                                                     Attribute="instanceType")["InstanceType"]),
        "image": (image["State"], image["Public"], image.get("Description"),
                  ec2.describe_image_attribute(ImageId=t["image"],
                                               Attribute="launchPermission")["LaunchPermissions"]),
        "volume": (volume["State"], volume["Size"], volume["Attachments"], volume.get("Tags")),
        "snapshot": (snapshot["State"], snapshot.get("Description"), snapshot.get("Tags"),
                     ec2.describe_snapshot_attribute(SnapshotId=t["snapshot"],
                                                     Attribute="createVolumePermission")["CreateVolumePermissions"]),
        "address": (address["PublicIp"], address.get("InstanceId"), address.get("AssociationId")),
        "key pairs": [(k["KeyPairId"], k["KeyName"]) for k in ec2.describe_key_pairs()["KeyPairs"]],
        "group": (group["IpPermissions"], group.get("Tags")),
        "bucket": (s3.get_bucket_acl(Bucket=t["bucket"])["Grants"],
                   [(o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=t["bucket"]).get("Contents", [])],
                   s3.list_multipart_uploads(Bucket=t["bucket"]).get("Uploads", [])),
        "object": (hashlib.sha256(body).hexdigest(),
                   s3.get_object_acl(Bucket=t["bucket"], Key=t["object"])["Grants"]),
    }


def _answer(call: Callable[[], Any]) -> tuple[int, str]:
    try:
        answer = call()
    except ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]
    return 200, answer if isinstance(answer, str) else "succeeded"


def _per_key(answer: dict) -> str:
    """A multi-object delete answers 200 and says per key what became of it."""
    return " ".join([f"deleted:{d['Key']}" for d in answer.get("Deleted", [])] +
                    [f"{e['Code']}:{e['Key']}" for e in answer.get("Errors", [])])


def _attempts(b: Account, t: dict[str, str], b_instance: str) -> list[tuple[str, Callable[[], Any], tuple[int, str]]]:
    """(what B tries, the call, the answer EC2 or S3 gives) for each way into A's resources."""
    ec2, s3 = b.ec2, b.s3
    instance, image, volume, snapshot = t["instance"], t["image"], t["volume"], t["snapshot"]
    bucket, key = t["bucket"], t["object"]
    no_instance = (400, "InvalidInstanceID.NotFound")
    no_image = (400, "InvalidAMIID.NotFound")
    no_volume = (400, "InvalidVolume.NotFound")
    no_snapshot = (400, "InvalidSnapshot.NotFound")
    denied = (403, "AccessDenied")
    tag = [{"Key": "owner", "Value": "b"}]
    return [
        # instances
        ("describe A's instance", lambda: ec2.describe_instances(InstanceIds=[instance]), no_instance),
        ("describe A's instance's status", lambda: ec2.describe_instance_status(InstanceIds=[instance]), no_instance),
        ("terminate A's instance", lambda: ec2.terminate_instances(InstanceIds=[instance]), no_instance),
        ("stop A's instance", lambda: ec2.stop_instances(InstanceIds=[instance]), no_instance),
        ("reboot A's instance", lambda: ec2.reboot_instances(InstanceIds=[instance]), no_instance),
        ("read A's console", lambda: ec2.get_console_output(InstanceId=instance), no_instance),
        ("read A's instance attribute",
         lambda: ec2.describe_instance_attribute(InstanceId=instance, Attribute="instanceType"), no_instance),
        ("change A's instance attribute",
         lambda: ec2.modify_instance_attribute(InstanceId=instance, InstanceType={"Value": "m1.large"}), no_instance),
        ("tag A's instance", lambda: ec2.create_tags(Resources=[instance], Tags=tag), no_instance),
        ("untag A's instance", lambda: ec2.delete_tags(Resources=[instance]), no_instance),
        ("image A's instance", lambda: ec2.create_image(InstanceId=instance, Name="b-copy"), no_instance),
        # images
        ("describe A's image", lambda: ec2.describe_images(ImageIds=[image]), no_image),
        ("launch A's image", lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1), no_image),
        ("read A's image's launch permission",
         lambda: ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission"), no_image),
        ("share A's image with itself", lambda: ec2.modify_image_attribute(
            ImageId=image, LaunchPermission={"Add": [{"UserId": b.id}]}), no_image),
        ("make A's image public", lambda: ec2.modify_image_attribute(
            ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]}), no_image),
        ("reset A's image's launch permission",
         lambda: ec2.reset_image_attribute(ImageId=image, Attribute="launchPermission"), no_image),
        ("deregister A's image", lambda: ec2.deregister_image(ImageId=image), no_image),
        ("tag A's image", lambda: ec2.create_tags(Resources=[image], Tags=tag), no_image),
        # volumes
        ("describe A's volume", lambda: ec2.describe_volumes(VolumeIds=[volume]), no_volume),
        ("describe A's volume's status", lambda: ec2.describe_volume_status(VolumeIds=[volume]), no_volume),
        ("read A's volume attribute",
         lambda: ec2.describe_volume_attribute(VolumeId=volume, Attribute="autoEnableIO"), no_volume),
        ("attach A's volume to B's instance", lambda: ec2.attach_volume(
            VolumeId=volume, InstanceId=b_instance, Device="/dev/sdf"), no_volume),
        ("detach A's volume", lambda: ec2.detach_volume(VolumeId=volume, Force=True), no_volume),
        ("grow A's volume", lambda: ec2.modify_volume(VolumeId=volume, Size=2), no_volume),
        ("snapshot A's volume", lambda: ec2.create_snapshot(VolumeId=volume), no_volume),
        ("delete A's volume", lambda: ec2.delete_volume(VolumeId=volume), no_volume),
        ("tag A's volume", lambda: ec2.create_tags(Resources=[volume], Tags=tag), no_volume),
        # snapshots
        ("describe A's snapshot", lambda: ec2.describe_snapshots(SnapshotIds=[snapshot]), no_snapshot),
        ("restore A's snapshot", lambda: ec2.create_volume(SnapshotId=snapshot, AvailabilityZone=t["zone"]),
         no_snapshot),
        ("copy A's snapshot", lambda: ec2.copy_snapshot(SourceRegion=b.ec2.meta.region_name,
                                                        SourceSnapshotId=snapshot), no_snapshot),
        ("read A's snapshot's permission", lambda: ec2.describe_snapshot_attribute(
            SnapshotId=snapshot, Attribute="createVolumePermission"), no_snapshot),
        ("share A's snapshot with itself", lambda: ec2.modify_snapshot_attribute(
            SnapshotId=snapshot, CreateVolumePermission={"Add": [{"UserId": b.id}]}), no_snapshot),
        ("reset A's snapshot's permission", lambda: ec2.reset_snapshot_attribute(
            SnapshotId=snapshot, Attribute="createVolumePermission"), no_snapshot),
        ("delete A's snapshot", lambda: ec2.delete_snapshot(SnapshotId=snapshot), no_snapshot),
        ("tag A's snapshot", lambda: ec2.create_tags(Resources=[snapshot], Tags=tag), no_snapshot),
        # addresses
        ("describe A's address by allocation", lambda: ec2.describe_addresses(AllocationIds=[t["allocation"]]),
         (400, "InvalidAllocationID.NotFound")),
        ("describe A's address by IP", lambda: ec2.describe_addresses(PublicIps=[t["public_ip"]]),
         (400, "InvalidAddress.NotFound")),
        ("move A's address to B's instance", lambda: ec2.associate_address(
            AllocationId=t["allocation"], InstanceId=b_instance, AllowReassociation=True),
         (400, "InvalidAllocationID.NotFound")),
        ("move A's address by IP", lambda: ec2.associate_address(
            PublicIp=t["public_ip"], InstanceId=b_instance, AllowReassociation=True), (401, "AuthFailure")),
        ("disassociate A's address", lambda: ec2.disassociate_address(AssociationId=t["association"]),
         (400, "InvalidAssociationID.NotFound")),
        ("disassociate A's address by IP", lambda: ec2.disassociate_address(PublicIp=t["public_ip"]),
         (401, "AuthFailure")),
        ("release A's address", lambda: ec2.release_address(AllocationId=t["allocation"]),
         (400, "InvalidAllocationID.NotFound")),
        ("release A's address by IP", lambda: ec2.release_address(PublicIp=t["public_ip"]), (401, "AuthFailure")),
        # key pairs and groups, where another action names them
        ("launch into A's group", lambda: ec2.run_instances(
            ImageId=t["b_image"], MinCount=1, MaxCount=1, SecurityGroupIds=[t["group"]]),
         (400, "InvalidGroup.NotFound")),
        ("launch with A's key pair's name", lambda: ec2.run_instances(
            ImageId=t["b_image"], MinCount=1, MaxCount=1, KeyName="a-key"), (400, "InvalidKeyPair.NotFound")),
        ("put B's instance in A's group", lambda: ec2.modify_instance_attribute(
            InstanceId=b_instance, Groups=[t["group"]]), (400, "InvalidGroup.NotFound")),
        # buckets and objects
        ("list A's bucket", lambda: s3.list_objects_v2(Bucket=bucket), denied),
        ("read A's object", lambda: s3.get_object(Bucket=bucket, Key=key), denied),
        ("head A's object", lambda: s3.head_object(Bucket=bucket, Key=key), (403, "403")),
        ("overwrite A's object", lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"B was here"), denied),
        ("add to A's bucket", lambda: s3.put_object(Bucket=bucket, Key="from-b", Body=b"B was here"), denied),
        ("copy A's object out", lambda: s3.copy_object(Bucket=t["b_bucket"], Key="stolen",
                                                       CopySource={"Bucket": bucket, "Key": key}), denied),
        ("copy into A's bucket", lambda: s3.copy_object(Bucket=bucket, Key="from-b",
                                                        CopySource={"Bucket": t["b_bucket"], "Key": "b.txt"}),
         denied),
        ("start an upload in A's bucket", lambda: s3.create_multipart_upload(Bucket=bucket, Key="from-b"), denied),
        ("delete A's object", lambda: s3.delete_object(Bucket=bucket, Key=key), denied),
        ("delete A's objects in bulk", lambda: _per_key(s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key}]})), (200, f"AccessDenied:{key}")),
        ("read A's bucket ACL", lambda: s3.get_bucket_acl(Bucket=bucket), denied),
        ("grant itself A's bucket", lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write"), denied),
        ("read A's object ACL", lambda: s3.get_object_acl(Bucket=bucket, Key=key), denied),
        ("grant itself A's object", lambda: s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read"),
         denied),
        ("list A's uploads", lambda: s3.list_multipart_uploads(Bucket=bucket), denied),
        ("delete A's bucket", lambda: s3.delete_bucket(Bucket=bucket), denied),
        ("take A's bucket's name", lambda: s3.create_bucket(Bucket=bucket), (409, "BucketAlreadyExists")),
    ]


@pytest.fixture(scope="module")
def bs(isolation_cloud: Cloud, isolation_image: str, b: Account, theirs: dict[str, str]) -> dict[str, str]:
    """B's own: an instance (of an image the admin shares with B), a bucket with an object."""
    image = isolation_image
    isolation_cloud.set_launch_permission(image, shared_with=[b.id])
    [instance] = b.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    bucket = f"acct-b-{secrets.token_hex(4)}"
    b.s3.create_bucket(Bucket=bucket)
    b.s3.put_object(Bucket=bucket, Key="b.txt", Body=b"B's own")
    b.ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=FAST)
    return {"image": image, "instance": instance["InstanceId"], "bucket": bucket}


def test_b_can_neither_read_nor_change_anything_of_as(a: Account, b: Account, theirs, bs) -> None:
    before = _view(a, theirs)
    t = {**theirs, "b_image": bs["image"], "b_bucket": bs["bucket"]}
    wrong = [f"{what}: {got} (EC2/S3 answer {expected})"
             for what, call, expected in _attempts(b, t, bs["instance"])
             if (got := _answer(call)) != expected]
    assert wrong == [], "\n".join(wrong)
    assert _view(a, theirs) == before
    # B's own launches and uploads went nowhere.
    b_instances = [i["InstanceId"] for r in b.ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert b_instances == [bs["instance"]]
    assert [o["Key"] for o in b.s3.list_objects_v2(Bucket=bs["bucket"])["Contents"]] == ["b.txt"]


def test_b_lists_nothing_of_as(a: Account, b: Account, theirs, bs) -> None:
    ec2 = b.ec2
    owned = {v for k, v in theirs.items() if k not in {"zone", "bucket", "object"}}
    listed = {
        *(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]),
        *(i["InstanceId"] for i in ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]),
        *(i["ImageId"] for i in ec2.describe_images()["Images"]),
        *(i["ImageId"] for i in ec2.describe_images(ExecutableUsers=["self"])["Images"]),
        *(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
        *(s["SnapshotId"] for s in ec2.describe_snapshots()["Snapshots"]),
        *(s["SnapshotId"] for s in ec2.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]),
        *(x for addr in ec2.describe_addresses()["Addresses"]
          for x in (addr["PublicIp"], addr.get("AllocationId"))),
        *(k["KeyPairId"] for k in ec2.describe_key_pairs()["KeyPairs"]),
        *(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
        *(t["ResourceId"] for t in ec2.describe_tags()["Tags"]),
    }
    assert listed & owned == set()
    assert theirs["bucket"] not in [x["Name"] for x in b.s3.list_buckets()["Buckets"]]
    # Filters do not reach across either.
    assert ec2.describe_instances(Filters=[{"Name": "tag:owner", "Values": ["a"]}])["Reservations"] == []
    assert ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                          "Values": [theirs["instance"]]}])["Volumes"] == []


def test_a_shared_image_is_launchable_by_b_and_no_longer_once_unshared(isolation_cloud: Cloud, a: Account,
                                                                         b: Account, theirs, bs) -> None:
    image = theirs["image"]
    a.ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": b.id}]})
    try:
        assert [i["ImageId"] for i in b.ec2.describe_images(ExecutableUsers=["self"])["Images"]
                if i["ImageId"] == image] == [image]
        [launched] = b.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
        assert launched["ImageId"] == image
        # Launching it is all B may do: the image stays A's.
        assert _answer(lambda: b.ec2.modify_image_attribute(
            ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})) == (401, "AuthFailure")
        assert _answer(lambda: b.ec2.deregister_image(ImageId=image)) == (401, "AuthFailure")
        b.ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])
        # Settled before the next test, which may compare the cloud's state before and after.
        b.ec2.get_waiter("instance_terminated").wait(InstanceIds=[launched["InstanceId"]], WaiterConfig=FAST)
    finally:
        a.ec2.reset_image_attribute(ImageId=image, Attribute="launchPermission")
    assert _answer(lambda: b.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)) == \
        (400, "InvalidAMIID.NotFound")
    assert a.ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"


def test_a_shared_snapshot_makes_volumes_for_b_and_stays_as(a: Account, b: Account, theirs) -> None:
    snapshot = theirs["snapshot"]
    a.ec2.modify_snapshot_attribute(SnapshotId=snapshot, CreateVolumePermission={"Add": [{"UserId": b.id}]})
    try:
        assert [s["SnapshotId"] for s in b.ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]] == [snapshot]
        restored = b.ec2.create_volume(SnapshotId=snapshot, AvailabilityZone=theirs["zone"])["VolumeId"]
        b.ec2.get_waiter("volume_available").wait(VolumeIds=[restored], WaiterConfig=FAST)
        assert _answer(lambda: a.ec2.describe_volumes(VolumeIds=[restored])) == (400, "InvalidVolume.NotFound")
        assert _answer(lambda: b.ec2.delete_snapshot(SnapshotId=snapshot))[1] in {"InvalidSnapshot.NotFound",
                                                                                 "AuthFailure"}
        assert _answer(lambda: b.ec2.modify_snapshot_attribute(
            SnapshotId=snapshot, CreateVolumePermission={"Add": [{"Group": "all"}]}))[1] in {
            "InvalidSnapshot.NotFound", "AuthFailure"}
        b.ec2.delete_volume(VolumeId=restored)
        b.ec2.get_waiter("volume_deleted").wait(VolumeIds=[restored], WaiterConfig=FAST)
    finally:
        a.ec2.reset_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
    assert _answer(lambda: b.ec2.describe_snapshots(SnapshotIds=[snapshot])) == (400, "InvalidSnapshot.NotFound")
    assert a.ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"] == "completed"


def test_an_object_grant_lets_b_read_it_and_nothing_more(a: Account, b: Account, theirs) -> None:
    bucket, key = theirs["bucket"], theirs["object"]
    original = a.s3.get_object_acl(Bucket=bucket, Key=key)
    owner = original["Owner"]
    a.s3.put_object_acl(Bucket=bucket, Key=key, AccessControlPolicy={"Owner": owner, "Grants": [
        *original["Grants"], {"Grantee": {"Type": "CanonicalUser", "ID": b.id}, "Permission": "READ"}]})
    try:
        assert b.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY
        assert _answer(lambda: b.s3.put_object(Bucket=bucket, Key=key, Body=b"B was here")) == (403, "AccessDenied")
        assert _answer(lambda: b.s3.delete_object(Bucket=bucket, Key=key)) == (403, "AccessDenied")
        assert _answer(lambda: b.s3.get_object_acl(Bucket=bucket, Key=key)) == (403, "AccessDenied")
        assert _answer(lambda: b.s3.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    finally:
        a.s3.put_object_acl(Bucket=bucket, Key=key, AccessControlPolicy={"Owner": owner,
                                                                         "Grants": original["Grants"]})
    assert _answer(lambda: b.s3.get_object(Bucket=bucket, Key=key)) == (403, "AccessDenied")
    assert hashlib.sha256(a.s3.get_object(Bucket=bucket, Key=key)["Body"].read()).digest() == \
        hashlib.sha256(BODY).digest()


def test_a_bucket_grant_lets_b_list_and_write_there_and_no_more(a: Account, b: Account, theirs) -> None:
    bucket, key = theirs["bucket"], theirs["object"]
    a.s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f"id={a.id}", GrantRead=f"id={b.id}",
                        GrantWrite=f"id={b.id}")
    try:
        assert key in [o["Key"] for o in b.s3.list_objects_v2(Bucket=bucket)["Contents"]]
        b.s3.put_object(Bucket=bucket, Key="from-b", Body=b"B's, with leave")
        # The bucket's grant is not the objects': A's object stays A's to read.
        assert _answer(lambda: b.s3.get_object(Bucket=bucket, Key=key)) == (403, "AccessDenied")
        assert _answer(lambda: b.s3.put_bucket_acl(Bucket=bucket, ACL="public-read")) == (403, "AccessDenied")
        assert _answer(lambda: b.s3.delete_bucket(Bucket=bucket)) == (403, "AccessDenied")
        b.s3.delete_object(Bucket=bucket, Key="from-b")
    finally:
        a.s3.put_bucket_acl(Bucket=bucket, ACL="private")
    wait_for(lambda: _answer(lambda: b.s3.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied"),
             10, "B's grant gone")
    assert [o["Key"] for o in a.s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
