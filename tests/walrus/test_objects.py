"""Objects: put/get/head/delete, metadata, Content-MD5, ETags, checksums, ranges,
preconditions, copy, batch delete, and keys of every shape."""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from tests.walrus.helpers import code_and_status, keys_of, s3_error


def test_put_get_head_delete_with_metadata(s3, bucket):  # type: ignore[no-untyped-def]
    body = b"hello walrus\n" * 100
    put = s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=body, ContentType="text/plain",
                        Metadata={"color": "blue", "Owner": "Ann"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="r.txt"')
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"color": "blue", "owner": "Ann"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="r.txt"'
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert abs(head["LastModified"] - datetime.now(timezone.utc)) < timedelta(minutes=1)
    s3.delete_object(Bucket=bucket, Key="docs/readme.txt")
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="docs/readme.txt")) == \
        ("NoSuchKey", 404)
    assert code_and_status(s3_error(s3.head_object, Bucket=bucket, Key="docs/readme.txt")) == \
        ("404", 404)
    # deleting what is not there succeeds, as in S3
    s3.delete_object(Bucket=bucket, Key="docs/readme.txt")


def test_empty_object_and_default_content_type(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert got["ContentType"] == "binary/octet-stream"


def test_overwrite_replaces_body_and_frees_old_blob(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    before = len(walrus.stored_blobs())
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert len(walrus.stored_blobs()) == before


def test_good_content_md5_is_accepted(s3, bucket):  # type: ignore[no-untyped-def]
    md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=b"data", ContentMD5=md5)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == b"data"


def test_wrong_content_md5_is_bad_digest_and_stores_nothing(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    before = len(walrus.stored_blobs())
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    error = s3_error(s3.put_object, Bucket=bucket, Key="bad", Body=b"data", ContentMD5=wrong)
    assert code_and_status(error) == ("BadDigest", 400)
    assert keys_of(s3, bucket) == []
    assert len(walrus.stored_blobs()) == before


def test_malformed_content_md5_is_invalid_digest(s3, bucket):  # type: ignore[no-untyped-def]
    error = s3_error(s3.put_object, Bucket=bucket, Key="bad", Body=b"data", ContentMD5="nope")
    assert code_and_status(error) == ("InvalidDigest", 400)
    assert keys_of(s3, bucket) == []


def test_crc32_sent_by_boto3_is_verified_stored_and_returned(s3, bucket):  # type: ignore[no-untyped-def]
    body = b"checksummed" * 1000
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, ChecksumAlgorithm="CRC32")
    expected = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == expected
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == expected
    assert got["Body"].read() == body


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1"])
def test_other_checksums(s3, bucket, algorithm: str):  # type: ignore[no-untyped-def]
    body = b"x" * 5000
    put = s3.put_object(Bucket=bucket, Key=algorithm, Body=body, ChecksumAlgorithm=algorithm)
    digest = getattr(hashlib, algorithm.lower())(body).digest()
    assert put[f"Checksum{algorithm}"] == base64.b64encode(digest).decode()
    got = s3.head_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == base64.b64encode(digest).decode()


def test_wrong_checksum_header_is_refused(s3, bucket):  # type: ignore[no-untyped-def]
    wrong = base64.b64encode(zlib.crc32(b"else").to_bytes(4, "big")).decode()
    error = s3_error(s3.put_object, Bucket=bucket, Key="c", Body=b"data", ChecksumCRC32=wrong)
    assert code_and_status(error) == ("BadDigest", 400)
    assert keys_of(s3, bucket) == []


def test_ranges(s3, bucket):  # type: ignore[no-untyped-def]
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    part = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert part["Body"].read() == body[10:20]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=10000-")["Body"].read() == body[10000:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == body[-5:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-999999")["Body"].read() == body
    error = s3_error(s3.get_object, Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code_and_status(error) == ("InvalidRange", 416)


def test_preconditions(s3, bucket):  # type: ignore[no-untyped-def]
    etag = s3.put_object(Bucket=bucket, Key="p", Body=b"v1")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="p")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="p", IfMatch=etag)["Body"].read() == b"v1"
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="p", IfMatch='"abc"')) == \
        ("PreconditionFailed", 412)
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="p", IfNoneMatch=etag)) == \
        ("304", 304)
    later = modified + timedelta(hours=1)
    earlier = modified - timedelta(hours=1)
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="p",
                                    IfModifiedSince=later)) == ("304", 304)
    assert s3.get_object(Bucket=bucket, Key="p", IfModifiedSince=earlier)["Body"].read() == b"v1"
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="p",
                                    IfUnmodifiedSince=earlier)) == ("PreconditionFailed", 412)
    assert code_and_status(s3_error(s3.head_object, Bucket=bucket, Key="p",
                                    IfMatch='"abc"')) == ("412", 412)


def test_put_if_none_match_star(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    error = s3_error(s3.put_object, Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert code_and_status(error) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


def test_copy_object_with_metadata_directive(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/x-src",
                  Metadata={"a": "1"})
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"copy me").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me"
    assert got["Metadata"] == {"a": "1"} and got["ContentType"] == "text/x-src"
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert got["Metadata"] == {"b": "2"} and got["ContentType"] == "text/plain"
    error = s3_error(s3.copy_object, Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert code_and_status(error) == ("InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    error = s3_error(s3.copy_object, Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert code_and_status(error) == ("NoSuchKey", 404)
    error = s3_error(s3.copy_object, Bucket=bucket, Key="x", CopySource=f"{bucket}/src",
                     CopySourceIfMatch='"nope"')
    assert code_and_status(error) == ("PreconditionFailed", 412)


def test_delete_objects_batch_and_quiet(s3, bucket):  # type: ignore[no-untyped-def]
    for key in ["a", "b", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"},
                                                                  {"Key": "zz"}]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "b", "zz"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert keys_of(s3, bucket) == ["d"]


@pytest.mark.parametrize("key", ["../../etc/passwd", "/leading/slash", "a//b/../c", "sp ace+plus",
                                 "ünïcødé/ключ/鍵", "percent%20literal", "q?x=1&y=#frag",
                                 "tilde~!'()*", "x" * 1024])
def test_keys_of_any_shape_round_trip(walrus, s3, bucket, key: str):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert keys_of(s3, bucket) == [key]
    # bodies are named by Walrus's own ids, never by the key: no key names a file or object
    assert all(re.fullmatch("[0-9a-f]{32}", blob) for blob in walrus.stored_blobs())


def test_key_of_1025_bytes_is_refused(s3, bucket):  # type: ignore[no-untyped-def]
    error = s3_error(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code_and_status(error) == ("KeyTooLongError", 400)
    # 1,024 bytes counted in UTF-8, not characters
    error = s3_error(s3.put_object, Bucket=bucket, Key="é" * 513, Body=b"x")
    assert code_and_status(error) == ("KeyTooLongError", 400)
    assert keys_of(s3, bucket) == []


def test_response_header_overrides(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="application/json",
                        ResponseContentDisposition="inline")
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"


def test_version_null_is_the_object(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="v", Body=b"only version")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"only version"
    error = s3_error(s3.get_object, Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ")
    assert code_and_status(error) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="v", VersionId="null")
    assert keys_of(s3, bucket) == []


def test_key_that_is_not_utf8_is_invalid_uri(walrus, bucket):  # type: ignore[no-untyped-def]
    import httpx

    answer = httpx.get(f"{walrus.url}/{bucket}/bad%FFkey")
    assert answer.status_code == 400 and b"<Code>InvalidURI</Code>" in answer.content
