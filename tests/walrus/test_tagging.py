"""Object tags: Put/Get/DeleteObjectTagging (of the current version and by version id), tags
given on PUT, multipart initiation and copy (with the tagging directive), the tag count on
GET, S3's limits, and who may touch them."""

from __future__ import annotations

import json

from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, s3_error


def tags_of(s3, bucket: str, key: str, **kwargs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key,
                                                                **kwargs)["TagSet"]}


def tag_set(**tags: str) -> dict[str, list[dict[str, str]]]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def test_put_get_delete_object_tagging(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert tags_of(s3, bucket, "k") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(team="blue", env="prod"))
    assert tags_of(s3, bucket, "k") == {"team": "blue", "env": "prod"}
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert tags_of(s3, bucket, "k") == {}
    # the body was never touched
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_tags_on_put_with_url_encoding(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a%20b=c%26d&empty=")
    assert tags_of(s3, bucket, "k") == {"a b": "c&d", "empty": ""}


def test_bad_tags_are_refused_and_change_nothing(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=1")
    eleven = {"TagSet": [{"Key": f"k{n}", "Value": "v"} for n in range(11)]}
    cases = [(eleven, "BadRequest"), (tag_set(**{"aws:x": "v"}), "InvalidTag"),
             (tag_set(**{"k" * 129: "v"}), "InvalidTag"), (tag_set(k="v" * 257), "InvalidTag"),
             ({"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]}, "InvalidTag")]
    for document, code in cases:
        error = s3_error(s3.put_object_tagging, Bucket=bucket, Key="k", Tagging=document)
        assert code_and_status(error) == (code, 400)
    assert tags_of(s3, bucket, "k") == {"keep": "1"}
    error = s3_error(s3.put_object, Bucket=bucket, Key="new", Body=b"x", Tagging="a=1&a=2")
    assert code_and_status(error) == ("InvalidArgument", 400)
    error = s3_error(s3.head_object, Bucket=bucket, Key="new")
    assert code_and_status(error) == ("404", 404)


def test_tags_of_a_missing_key(s3, bucket):  # type: ignore[no-untyped-def]
    error = s3_error(s3.get_object_tagging, Bucket=bucket, Key="nope")
    assert code_and_status(error) == ("NoSuchKey", 404)
    error = s3_error(s3.put_object_tagging, Bucket=bucket, Key="nope", Tagging=tag_set(a="b"))
    assert code_and_status(error) == ("NoSuchKey", 404)


def test_multipart_upload_takes_its_tags_at_initiation(s3, bucket):  # type: ignore[no-untyped-def]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=raw")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"stage": "raw"}


def test_copy_keeps_or_replaces_tags_by_directive(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="from=source")
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="kept", CopySource=source)
    assert tags_of(s3, bucket, "kept") == {"from": "source"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=source, TaggingDirective="REPLACE",
                   Tagging="new=tag")
    assert tags_of(s3, bucket, "replaced") == {"new": "tag"}
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=source, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "cleared") == {}


def test_tags_belong_to_each_version(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=first, Tagging=tag_set(v="one"))
    assert put["VersionId"] == first
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)
    assert got["VersionId"] == first and tags_of(s3, bucket, "k", VersionId=first) == {"v": "one"}
    assert tags_of(s3, bucket, "k") == {} and tags_of(s3, bucket, "k", VersionId=second) == {}


def test_only_owners_touch_tags(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read", Tagging="a=1")
    bob = walrus.client(BOB)
    assert bob.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert code_and_status(s3_error(bob.get_object_tagging, Bucket=bucket, Key="k")) == \
        ("AccessDenied", 403)
    error = s3_error(bob.put_object_tagging, Bucket=bucket, Key="k", Tagging=tag_set(b="2"))
    assert code_and_status(error) == ("AccessDenied", 403)
    assert code_and_status(s3_error(bob.delete_object_tagging, Bucket=bucket, Key="k")) == \
        ("AccessDenied", 403)
    assert tags_of(s3, bucket, "k") == {"a": "1"}


def test_bucket_tagging_is_still_refused_not_mistaken_for_create_bucket(s3, bucket):  # type: ignore[no-untyped-def]
    error = s3_error(s3.put_bucket_tagging, Bucket=bucket, Tagging=tag_set(a="b"))
    assert code_and_status(error) == ("NotImplemented", 501)


def test_aws_cli_tagging(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    aws(walrus, ALICE, "s3api", "put-object-tagging", "--bucket", bucket, "--key", "k",
        "--tagging", "TagSet=[{Key=owner,Value=cli}]")
    got = json.loads(aws(walrus, ALICE, "s3api", "get-object-tagging", "--bucket", bucket,
                         "--key", "k").stdout)
    assert got["TagSet"] == [{"Key": "owner", "Value": "cli"}]
