"""The test Ceph cluster answers as RBD and S3 clients expect, so the SC and Walrus suites
that run on it test our code, not a half-started cluster."""

import boto3


def test_rbd_pool_and_rgw_answer(ceph) -> None:
    ceph.run("rbd", "create", "--size", "64M", f"{ceph.pool}/fixture-probe")
    try:
        assert "fixture-probe" in ceph.images()
        ceph.run("rbd", "snap", "create", f"{ceph.pool}/fixture-probe@s1")
    finally:
        ceph.run("rbd", "snap", "purge", f"{ceph.pool}/fixture-probe")
        ceph.run("rbd", "rm", f"{ceph.pool}/fixture-probe")
    assert len(ceph.key("admin")) > 20
    s3 = boto3.client("s3", endpoint_url=ceph.rgw_endpoint, aws_access_key_id=ceph.access_key,
                      aws_secret_access_key=ceph.secret_key, region_name="us-east-1")
    s3.create_bucket(Bucket="fixture-probe")
    s3.put_object(Bucket="fixture-probe", Key="k", Body=b"ceph")
    assert s3.get_object(Bucket="fixture-probe", Key="k")["Body"].read() == b"ceph"
    s3.delete_object(Bucket="fixture-probe", Key="k")
    s3.delete_bucket(Bucket="fixture-probe")
