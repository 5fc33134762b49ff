"""The edges clients and S3 conformance suites probe: max-keys=0, an empty continuation token,
creating a bucket one already owns (us-east-1's rule), presigned X-Amz-Expires out of range
and expired SigV2/SigV4 requests, UploadPartCopy with an invalid range, and a part uploaded
again while its first upload is still in flight."""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from unittest import mock

import botocore.auth
import httpx
import pytest

from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, keys_of, s3_client, s3_error

MIB = 1024 * 1024


def test_max_keys_zero_lists_nothing_and_is_not_truncated(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for listed in (s3.list_objects(Bucket=bucket, MaxKeys=0),
                   s3.list_objects_v2(Bucket=bucket, MaxKeys=0),
                   s3.list_object_versions(Bucket=bucket, MaxKeys=0)):
        assert listed["IsTruncated"] is False and listed["MaxKeys"] == 0
        assert "Contents" not in listed and "Versions" not in listed
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0


def test_empty_continuation_token_starts_at_the_beginning(s3, bucket):  # type: ignore[no-untyped-def]
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert [o["Key"] for o in listed["Contents"]] == ["a", "b"]
    assert listed["ContinuationToken"] == "" and listed["IsTruncated"] is False
    error = s3_error(s3.list_objects_v2, Bucket=bucket, ContinuationToken="not-a-token")
    assert code_and_status(error) == ("InvalidArgument", 400)


def test_creating_a_bucket_one_owns_in_us_east_1_succeeds(walrus, s3):  # type: ignore[no-untyped-def]
    """us-east-1 answers 200 to a CreateBucket of a bucket the caller already owns there (and
    leaves it as it was); every other region answers BucketAlreadyOwnedByYou."""
    name = "edge-owned-us-east-1"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    s3.put_object(Bucket=name, Key="kept", Body=b"x")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert keys_of(s3, name) == ["kept"]
    other = "edge-owned-elsewhere"
    s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    error = s3_error(s3.create_bucket, Bucket=other,
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code_and_status(error) == ("BucketAlreadyOwnedByYou", 409)


@pytest.mark.parametrize("expires, status, code", [
    ("0", 403, b"AccessDenied"), ("604801", 400, b"AuthorizationQueryParametersError"),
    ("-1", 400, b"AuthorizationQueryParametersError")])
def test_presigned_v4_expires_out_of_range(walrus, bucket, expires, status, code):  # type: ignore[no-untyped-def]
    v4 = walrus.client(ALICE, signature_version="s3v4")
    v4.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=int(expires) if expires != "-1" else 60)
    url = url.replace(f"X-Amz-Expires={60 if expires == '-1' else expires}",
                      f"X-Amz-Expires={expires}")
    answer = httpx.get(url)
    assert answer.status_code == status and code in answer.content


@pytest.fixture
def an_hour_ago() -> Iterator[None]:
    """The client's clock an hour behind: what it signs is an hour old when Walrus sees it."""
    past = time.time() - 3600

    def formatted(timeval=None, localtime=False, usegmt=False):  # type: ignore[no-untyped-def]
        return email.utils.formatdate(past if timeval is None else timeval, localtime, usegmt)

    with mock.patch.object(botocore.auth, "get_current_datetime",
                           lambda *a, **k: dt.datetime.fromtimestamp(past, dt.timezone.utc)
                           .replace(tzinfo=None)), \
            mock.patch.object(botocore.auth, "formatdate", formatted), \
            mock.patch.object(botocore.auth, "time", SimpleNamespace(time=lambda: past)):
        yield


@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_expired_signed_requests_are_refused(walrus, bucket, an_hour_ago, version):  # type: ignore[no-untyped-def]
    client = s3_client(walrus.url, ALICE.access_key, ALICE.secret_key,
                       signature_version=version)
    error = s3_error(client.list_objects_v2, Bucket=bucket)
    assert code_and_status(error) == ("RequestTimeTooSkewed", 403)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=600)
    answer = httpx.get(url)
    assert answer.status_code == 403 and b"<Code>AccessDenied</Code>" in answer.content


@pytest.mark.parametrize("copy_range", ["bytes=5-2", "bytes=0-100", "bytes=0-", "bytes=-5",
                                        "bytes=a-b", "0-5"])
def test_upload_part_copy_with_an_invalid_range(walrus, s3, bucket, copy_range):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    blobs = len(walrus.stored_blobs())
    error = s3_error(s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1,
                     CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=copy_range)
    assert code_and_status(error) == ("InvalidArgument", 400)
    assert "Parts" not in s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload)
    assert len(walrus.stored_blobs()) == blobs


def test_upload_part_copy_with_a_valid_range(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src"},
                               CopySourceRange="bytes=2-5")
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"2345"


def test_part_uploaded_again_while_its_first_upload_is_in_flight(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    """The upload that finishes last is the part; the other's body is freed; completing with
    the etag of the one that lost is InvalidPart, never a mixed or corrupted object."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key="raced")["UploadId"]
    url = s3.generate_presigned_url("upload_part", Params={
        "Bucket": bucket, "Key": "raced", "UploadId": upload, "PartNumber": 1})
    first_half_sent = threading.Event()
    second_done = threading.Event()
    slow = b"S" * MIB

    def slow_body() -> Iterator[bytes]:
        yield slow[: MIB // 2]
        first_half_sent.set()
        assert second_done.wait(60)
        yield slow[MIB // 2:]

    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(httpx.put(
        url, content=slow_body(), headers={"Content-Length": str(MIB)}, timeout=60)))
    blobs = len(walrus.stored_blobs())
    thread.start()
    try:
        assert first_half_sent.wait(60)
        fast = s3.upload_part(Bucket=bucket, Key="raced", UploadId=upload, PartNumber=1,
                              Body=b"F" * 100)
    finally:
        second_done.set()
        thread.join(60)
    assert answers and answers[0].status_code == 200
    slow_etag = answers[0].headers["etag"]
    parts = s3.list_parts(Bucket=bucket, Key="raced", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, slow_etag)]
    # only the part that counts keeps a body (on a cluster, in the cluster's upload)
    assert len(walrus.stored_blobs()) == blobs + (1 if walrus.backend.name == "file" else 0)
    error = s3_error(s3.complete_multipart_upload, Bucket=bucket, Key="raced", UploadId=upload,
                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": fast["ETag"]}]})
    assert code_and_status(error) == ("InvalidPart", 400)
    s3.complete_multipart_upload(Bucket=bucket, Key="raced", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": slow_etag}]})
    assert s3.get_object(Bucket=bucket, Key="raced")["Body"].read() == slow


def test_listing_a_prefix_the_caller_may_not_read(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    """Reading one object is not listing its prefix: a public-read object in a private bucket
    is readable by anyone, while listing its prefix (or any) is refused, in every listing
    form, and a missing key under it answers 403 rather than tell that it is missing."""
    s3.put_object(Bucket=bucket, Key="public/readme", Body=b"hello", ACL="public-read")
    bob = walrus.client(BOB)
    assert bob.get_object(Bucket=bucket, Key="public/readme")["Body"].read() == b"hello"
    for listing in (bob.list_objects, bob.list_objects_v2, bob.list_object_versions):
        assert code_and_status(s3_error(listing, Bucket=bucket, Prefix="public/")) == \
            ("AccessDenied", 403)
    assert code_and_status(s3_error(bob.get_object, Bucket=bucket, Key="public/nothing")) == \
        ("AccessDenied", 403)
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="public/nothing")) == \
        ("NoSuchKey", 404)
