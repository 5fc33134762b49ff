"""Storage classes kept and reported (PUT, copy, multipart, listings), GetObjectAttributes,
x-amz-expected-bucket-owner, and conditional writes (If-Match / If-None-Match on PUT)."""

from __future__ import annotations

import hashlib
import json

from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, s3_error


def test_storage_class_on_put_get_head_and_listings(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER_IR")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"y")
    assert s3.head_object(Bucket=bucket, Key="cold")["StorageClass"] == "GLACIER_IR"
    assert s3.get_object(Bucket=bucket, Key="cold")["StorageClass"] == "GLACIER_IR"
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="plain")
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"cold": "GLACIER_IR", "plain": "STANDARD"}
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket=bucket)["Contents"]}
    assert listed == {"cold": "GLACIER_IR", "plain": "STANDARD"}
    versions = {v["Key"]: v["StorageClass"]
                for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert versions == {"cold": "GLACIER_IR", "plain": "STANDARD"}


def test_unknown_storage_class_is_refused(s3, bucket):  # type: ignore[no-untyped-def]
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", StorageClass="CHEAPEST")
    assert code_and_status(error) == ("InvalidStorageClass", 400)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_sets_the_storage_class_even_onto_itself(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", StorageClass="STANDARD_IA")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k"})
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="copy")
    # changing only the class of an object is a copy onto itself
    s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
                   StorageClass="ONEZONE_IA")
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_multipart_upload_keeps_its_storage_class(s3, bucket):  # type: ignore[no-untyped-def]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", StorageClass="DEEP_ARCHIVE")
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert uploads[0]["StorageClass"] == "DEEP_ARCHIVE"
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"p")
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])["StorageClass"] \
        == "DEEP_ARCHIVE"
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=bucket, Key="mp")["StorageClass"] == "DEEP_ARCHIVE"


def test_get_object_attributes(s3, bucket):  # type: ignore[no-untyped-def]
    body = b"attributes"
    s3.put_object(Bucket=bucket, Key="k", Body=body, StorageClass="STANDARD_IA",
                  ChecksumAlgorithm="SHA256")
    got = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=[
        "ETag", "Checksum", "StorageClass", "ObjectSize", "ObjectParts"])
    assert got["ETag"] == hashlib.md5(body).hexdigest()
    assert got["ObjectSize"] == len(body) and got["StorageClass"] == "STANDARD_IA"
    assert got["Checksum"]["ChecksumSHA256"]
    assert "ObjectParts" not in got and got["LastModified"]
    only = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == len(body) and "ETag" not in only
    error = s3_error(s3.get_object_attributes, Bucket=bucket, Key="missing",
                     ObjectAttributes=["ETag"])
    assert code_and_status(error) == ("NoSuchKey", 404)


def test_get_object_attributes_lists_parts(s3, bucket):  # type: ignore[no-untyped-def]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1,
                           Body=b"a" * (5 * 1024 * 1024))
    second = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, Body=b"b")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                   MaxParts=1)
    parts = got["ObjectParts"]
    assert parts["TotalPartsCount"] == 2 and parts["IsTruncated"] is True
    assert parts["Parts"] == [{"PartNumber": 1, "Size": 5 * 1024 * 1024}]
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=parts["NextPartNumberMarker"])
    assert rest["ObjectParts"]["Parts"] == [{"PartNumber": 2, "Size": 1}]


def test_get_object_attributes_of_a_version(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"newer")
    got = s3.get_object_attributes(Bucket=bucket, Key="k", VersionId=old,
                                   ObjectAttributes=["ObjectSize"])
    assert got["ObjectSize"] == 3 and got["VersionId"] == old


def test_expected_bucket_owner(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner="111111111111")
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="111111111111")
    error = s3_error(s3.get_object, Bucket=bucket, Key="k", ExpectedBucketOwner="222222222222")
    assert code_and_status(error) == ("AccessDenied", 403)
    error = s3_error(s3.put_object, Bucket=bucket, Key="other", Body=b"x",
                     ExpectedBucketOwner="222222222222")
    assert code_and_status(error) == ("AccessDenied", 403)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    error = s3_error(s3.copy_object, Bucket=bucket, Key="copy",
                     CopySource={"Bucket": bucket, "Key": "k"},
                     ExpectedSourceBucketOwner="222222222222")
    assert code_and_status(error) == ("AccessDenied", 403)
    # Bob's bucket named as Alice's
    bob = walrus.client(BOB)
    bob.create_bucket(Bucket=f"{bucket}-bob")
    error = s3_error(bob.list_objects_v2, Bucket=f"{bucket}-bob", ExpectedBucketOwner="111111111111")
    assert code_and_status(error) == ("AccessDenied", 403)


def test_if_match_on_put(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    blobs = len(walrus.stored_blobs())
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"two", IfMatch='"0000"')
    assert code_and_status(error) == ("PreconditionFailed", 412)
    assert len(walrus.stored_blobs()) == blobs
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first)["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    # the first ETag is stale now: a writer that read it loses the race
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"three", IfMatch=first)
    assert code_and_status(error) == ("PreconditionFailed", 412)
    assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == second
    error = s3_error(s3.put_object, Bucket=bucket, Key="absent", Body=b"x", IfMatch=first)
    assert code_and_status(error) == ("NoSuchKey", 404)
    assert len(walrus.stored_blobs()) == blobs


def test_if_match_on_put_in_a_versioned_bucket(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=etag)
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
    s3.delete_object(Bucket=bucket, Key="k")
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", IfMatch="*")
    assert code_and_status(error) == ("NoSuchKey", 404)


def test_if_none_match_on_put(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert code_and_status(error) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


def test_aws_cli_storage_class_and_attributes(walrus, s3, bucket, tmp_path):  # type: ignore[no-untyped-def]
    source = tmp_path / "f"
    source.write_bytes(b"cli")
    aws(walrus, ALICE, "s3", "cp", str(source), f"s3://{bucket}/f", "--storage-class",
        "STANDARD_IA")
    got = json.loads(aws(walrus, ALICE, "s3api", "get-object-attributes", "--bucket", bucket,
                         "--key", "f", "--object-attributes", "StorageClass", "ObjectSize").stdout)
    assert got["StorageClass"] == "STANDARD_IA" and got["ObjectSize"] == 3
    listed = aws(walrus, ALICE, "s3api", "list-objects-v2", "--bucket", bucket).stdout
    assert json.loads(listed)["Contents"][0]["StorageClass"] == "STANDARD_IA"
