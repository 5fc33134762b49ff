"""Buckets: create, head, delete, list, location, names, ownership."""

from __future__ import annotations

import uuid

import pytest

from tests.walrus.conftest import BOB
from tests.walrus.helpers import code_and_status, s3_error


def test_create_list_head_delete(s3):  # type: ignore[no-untyped-def]
    name = f"life-{uuid.uuid4().hex[:8]}"
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.delete_bucket(Bucket=name)
    assert code_and_status(s3_error(s3.head_bucket, Bucket=name)) == ("404", 404)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_location_constraint(s3):  # type: ignore[no-untyped-def]
    name = f"loc-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    plain = f"loc-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=plain)
    assert s3.get_bucket_location(Bucket=plain)["LocationConstraint"] == "eucalyptus"


@pytest.mark.parametrize("name", ["Capitals", "ab", "a" * 64, "-dash-first", "dot..dot", "internal",
                                  "192.168.1.1", "under_score", "xn--punycode"])
def test_invalid_bucket_names_are_refused(s3, name: str):  # type: ignore[no-untyped-def]
    error = s3_error(s3.create_bucket, Bucket=name)
    assert code_and_status(error) == ("InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_already_owned_vs_already_exists(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    assert code_and_status(s3_error(s3.create_bucket, Bucket=bucket)) == \
        ("BucketAlreadyOwnedByYou", 409)
    bob = walrus.client(BOB)
    assert code_and_status(s3_error(bob.create_bucket, Bucket=bucket)) == \
        ("BucketAlreadyExists", 409)
    assert bucket not in [b["Name"] for b in bob.list_buckets()["Buckets"]]


def test_delete_only_when_empty(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code_and_status(s3_error(s3.delete_bucket, Bucket=bucket)) == ("BucketNotEmpty", 409)
    s3.head_bucket(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)


def test_missing_bucket(s3):  # type: ignore[no-untyped-def]
    error = s3_error(s3.list_objects_v2, Bucket="no-such-bucket-here")
    assert code_and_status(error) == ("NoSuchBucket", 404)
    assert error.response["Error"]["BucketName"] == "no-such-bucket-here"
    assert error.response["ResponseMetadata"]["RequestId"]
    assert code_and_status(s3_error(s3.delete_bucket, Bucket="no-such-bucket-here")) == \
        ("NoSuchBucket", 404)


def test_list_buckets_shows_only_the_callers(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    bob = walrus.client(BOB)
    assert bucket not in [b["Name"] for b in bob.list_buckets()["Buckets"]]
    owner = s3.list_buckets()["Owner"]
    assert owner == {"ID": "111111111111", "DisplayName": "alice"}


def test_absent_configuration_subresources(s3, bucket):  # type: ignore[no-untyped-def]
    assert code_and_status(s3_error(s3.get_bucket_policy, Bucket=bucket)) == \
        ("NoSuchBucketPolicy", 404)
    assert code_and_status(s3_error(s3.get_bucket_tagging, Bucket=bucket)) == ("NoSuchTagSet", 404)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_error_document_names_resource_and_request_id(walrus):  # type: ignore[no-untyped-def]
    import httpx
    from xml.etree import ElementTree as ET

    answer = httpx.get(f"{walrus.url}/no-such-bucket-here/some/key")
    assert answer.status_code == 404
    root = ET.fromstring(answer.content)
    assert root.tag == "Error"
    assert root.findtext("Code") == "NoSuchBucket"
    assert root.findtext("Resource") == "/no-such-bucket-here/some/key"
    assert root.findtext("RequestId") == answer.headers["x-amz-request-id"]
    assert root.findtext("Message")
