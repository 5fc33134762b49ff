"""The whole cloud on PostgreSQL: every service started with one DATABASE_URL whose database
name holds "{service}", on a real PostgreSQL server (tests/support/postgres.py). Each service
creates its own database at first start and migrates it; then a user's session touches every
service's tables: an image (Walrus, CLC), an instance (CLC, CC, NC), a volume (CLC, SC), an
elastic IP and an object."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from tests.support.cloud import SERVICES, Cloud, running_cloud

FAST = {"Delay": 0.5, "MaxAttempts": 120}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, postgres) -> Iterator[Cloud]:  # type: ignore[no-untyped-def]
    with running_cloud(tmp_path_factory.mktemp("pgcloud"), nodes=1,
                       DATABASE_URL=postgres.url("pgcloud_{service}")) as c:
        yield c


def test_every_service_keeps_its_state_in_its_own_postgresql_database(cloud: Cloud, postgres) -> None:  # type: ignore[no-untyped-def]
    assert {f"pgcloud_{s}" for s in SERVICES} <= set(postgres.databases())
    assert not list(cloud.home.glob("*.db"))
    ec2 = cloud.ec2()
    image = cloud.register_image()
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    instance_id = instance["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    assert cloud.nodes_of([instance_id]) == {instance_id: "node-1"}
    volume_id = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    address = ec2.allocate_address(Domain="standard")["PublicIp"]
    ec2.associate_address(InstanceId=instance_id, PublicIp=address)
    [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert reservation["Instances"][0]["PublicIpAddress"] == address
    s3 = boto3.client("s3", endpoint_url=cloud.config.service_url("walrus"), region_name=cloud.config.REGION,
                      aws_access_key_id=cloud.admin.access_key,
                      aws_secret_access_key=cloud.admin.secret_key,
                      config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="pg-bucket")
    s3.put_object(Bucket="pg-bucket", Key="a/b.txt", Body=b"kept in PostgreSQL")
    assert s3.get_object(Bucket="pg-bucket", Key="a/b.txt")["Body"].read() == b"kept in PostgreSQL"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="pg-bucket")["Contents"]] == ["a/b.txt"]
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
