"""Bucket versioning as boto3 and the AWS CLI use it: version ids on PUT, copy and multipart
completion, reads and deletes by version, delete markers, the "null" version of a suspended
bucket, ListObjectVersions with its markers and paging, and a schema migration that keeps
every object stored before it."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from services.db import Database
from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, keys_of, s3_error

MIGRATIONS = Path(__file__).resolve().parents[2] / "walrus" / "migrations"


def versioned(s3, bucket: str, status: str = "Enabled") -> str:  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    return bucket


def all_versions(s3, bucket: str, **kwargs) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str, bool]]]:  # type: ignore[no-untyped-def]
    listed = s3.list_object_versions(Bucket=bucket, **kwargs)
    return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in listed.get("Versions", [])],
            [(m["Key"], m["VersionId"], m["IsLatest"]) for m in listed.get("DeleteMarkers", [])])


def test_versioning_status_starts_unset_then_enabled_then_suspended(s3, bucket):  # type: ignore[no-untyped-def]
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    versioned(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    versioned(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_bad_versioning_document_is_refused_and_changes_nothing(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    error = s3_error(s3.put_bucket_versioning, Bucket=bucket,
                     VersioningConfiguration={"Status": "Sometimes"})
    assert code_and_status(error) == ("MalformedXML", 400)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_only_the_owner_sets_versioning(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    bob = walrus.client(BOB)
    error = s3_error(bob.put_bucket_versioning, Bucket=bucket,
                     VersioningConfiguration={"Status": "Enabled"})
    assert code_and_status(error) == ("AccessDenied", 403)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_each_put_is_a_version_and_each_stays_readable(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="doc", Body=b"two")["VersionId"]
    assert first != second and "null" not in (first, second)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"two"
    got = s3.get_object(Bucket=bucket, Key="doc", VersionId=first)
    assert got["Body"].read() == b"one" and got["VersionId"] == first
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=second)["ContentLength"] == 3
    versions, markers = all_versions(s3, bucket)
    assert versions == [("doc", second, True), ("doc", first, False)] and markers == []
    assert keys_of(s3, bucket) == ["doc"]


def test_delete_makes_a_marker_and_the_data_stays(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"body")["VersionId"]
    blobs = len(walrus.stored_blobs())
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert gone["DeleteMarker"] is True
    marker = gone["VersionId"]
    error = s3_error(s3.get_object, Bucket=bucket, Key="k")
    assert code_and_status(error) == ("NoSuchKey", 404)
    assert error.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert keys_of(s3, bucket) == []
    assert len(walrus.stored_blobs()) == blobs
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"body"
    # a marker read by its id is not an object: 405, as S3 answers
    error = s3_error(s3.get_object, Bucket=bucket, Key="k", VersionId=marker)
    assert code_and_status(error) == ("MethodNotAllowed", 405)
    assert all_versions(s3, bucket) == ([("k", first, False)], [("k", marker, True)])
    # removing the marker brings the object back
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"body"
    assert keys_of(s3, bucket) == ["k"]


def test_deleting_a_version_frees_it_and_promotes_the_one_before(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    third = s3.put_object(Bucket=bucket, Key="k", Body=b"3")["VersionId"]
    blobs = len(walrus.stored_blobs())
    s3.delete_object(Bucket=bucket, Key="k", VersionId=second)
    assert len(walrus.stored_blobs()) == blobs - 1
    assert all_versions(s3, bucket)[0] == [("k", third, True), ("k", first, False)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=third)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"
    assert all_versions(s3, bucket)[0] == [("k", first, True)]
    error = s3_error(s3.get_object, Bucket=bucket, Key="k", VersionId=third)
    assert code_and_status(error) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=first)
    assert all_versions(s3, bucket) == ([], []) and len(walrus.stored_blobs()) == blobs - 3
    s3.delete_bucket(Bucket=bucket)


def test_a_bucket_with_versions_or_markers_is_not_empty(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    assert code_and_status(s3_error(s3.delete_bucket, Bucket=bucket)) == ("BucketNotEmpty", 409)


def test_suspended_bucket_writes_the_null_version_over_itself(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"before versioning")
    versioned(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"enabled")["VersionId"]
    versioned(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 1")["VersionId"] == "null"
    blobs = len(walrus.stored_blobs())
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 2")["VersionId"] == "null"
    # the "null" version written before versioning was replaced, not kept twice
    assert len(walrus.stored_blobs()) == blobs
    assert all_versions(s3, bucket)[0] == [("k", "null", True), ("k", kept, False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"suspended 2"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=kept)["Body"].read() == b"enabled"
    # a DELETE while suspended makes a "null" delete marker, replacing the null version
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert gone["DeleteMarker"] is True and gone["VersionId"] == "null"
    assert all_versions(s3, bucket) == ([("k", kept, False)], [("k", "null", True)])


def test_unversioned_bucket_lists_null_versions_and_sends_no_version_header(s3, bucket):  # type: ignore[no-untyped-def]
    put = s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert "VersionId" not in put
    assert "VersionId" not in s3.get_object(Bucket=bucket, Key="plain")
    assert all_versions(s3, bucket) == ([("plain", "null", True)], [])
    assert s3.get_object(Bucket=bucket, Key="plain", VersionId="null")["Body"].read() == b"x"
    error = s3_error(s3.get_object, Bucket=bucket, Key="plain", VersionId="nope")
    assert code_and_status(error) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="plain", VersionId="null")
    assert keys_of(s3, bucket) == []


def test_copy_from_an_older_version_and_restore_it_in_place(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old", Metadata={"v": "1"})["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    copied = s3.copy_object(Bucket=bucket, Key="dst",
                            CopySource={"Bucket": bucket, "Key": "src", "VersionId": old})
    assert copied["CopySourceVersionId"] == old and copied["VersionId"] not in (old, "null")
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"old" and got["Metadata"] == {"v": "1"}
    # copying a version onto its own key restores it as a new current version
    restored = s3.copy_object(Bucket=bucket, Key="src",
                              CopySource={"Bucket": bucket, "Key": "src", "VersionId": old})
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"old"
    assert len(all_versions(s3, bucket, Prefix="src")[0]) == 3
    assert restored["VersionId"] == s3.head_object(Bucket=bucket, Key="src")["VersionId"]


def test_copy_of_a_delete_marker_or_missing_version_is_refused(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    error = s3_error(s3.copy_object, Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"})
    assert code_and_status(error) == ("NoSuchKey", 404)
    error = s3_error(s3.copy_object, Bucket=bucket, Key="c",
                     CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker})
    assert code_and_status(error) == ("InvalidRequest", 400)
    error = s3_error(s3.copy_object, Bucket=bucket, Key="c",
                     CopySource={"Bucket": bucket, "Key": "k", "VersionId": "missing"})
    assert code_and_status(error) == ("NoSuchVersion", 404)
    assert all_versions(s3, bucket, Prefix="c") == ([], [])


def test_multipart_completion_makes_a_version(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="big", Body=b"small first")["VersionId"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"p" * 100)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                    "ETag": part["ETag"]}]})
    assert done["VersionId"] not in (first, "null")
    assert all_versions(s3, bucket)[0] == [("big", done["VersionId"], True), ("big", first, False)]
    # UploadPartCopy from an older version
    upload = s3.create_multipart_upload(Bucket=bucket, Key="from-old")["UploadId"]
    copied = s3.upload_part_copy(Bucket=bucket, Key="from-old", UploadId=upload, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "big", "VersionId": first})
    assert copied["CopySourceVersionId"] == first
    s3.complete_multipart_upload(Bucket=bucket, Key="from-old", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag":
                                                             copied["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="from-old")["Body"].read() == b"small first"


def test_delete_objects_by_version_and_with_markers(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": a1}, {"Key": "b"}]})
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["a"]["VersionId"] == a1
    assert by_key["b"]["DeleteMarker"] is True and by_key["b"]["DeleteMarkerVersionId"]
    versions, markers = all_versions(s3, bucket)
    assert versions[0] == ("a", a2, True) and len(versions) == 2
    assert markers == [("b", by_key["b"]["DeleteMarkerVersionId"], True)]


def test_if_none_match_star_sees_a_delete_marker_as_absent(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    error = s3_error(s3.put_object, Bucket=bucket, Key="k", Body=b"y", IfNoneMatch="*")
    assert code_and_status(error) == ("PreconditionFailed", 412)
    assert len(all_versions(s3, bucket)[0]) == 1
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"z", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"z"


def test_list_versions_with_prefix_delimiter_and_paging(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    ids: dict[str, list[str]] = {}
    for key, count in (("a", 3), ("dir/x", 2), ("dir/y", 1), ("m", 2)):
        for n in range(count):
            ids.setdefault(key, []).insert(0, s3.put_object(Bucket=bucket, Key=key,
                                                            Body=str(n).encode())["VersionId"])
    marker = s3.delete_object(Bucket=bucket, Key="m")["VersionId"]
    expected = ([("a", v) for v in ids["a"]] + [("dir/x", v) for v in ids["dir/x"]]
                + [("dir/y", v) for v in ids["dir/y"]] + [("m", marker)]
                + [("m", v) for v in ids["m"]])
    # page through two at a time with key and version-id markers, as boto3's paginator does
    seen: list[tuple[str, str]] = []
    kwargs: dict[str, str] = {}
    pages = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kwargs)
        pages += 1
        entries = [(v["Key"], v["VersionId"], v["LastModified"])
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        assert len(entries) <= 2
        seen += [(k, v) for k, v, _ in entries]
        if not page["IsTruncated"]:
            break
        kwargs = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected) and pages >= 5
    paginated = [v["VersionId"] for p in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 3}) for v in p.get("Versions", [])]
    assert len(paginated) == 8
    # prefix and delimiter
    listed = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["dir/"]
    assert {v["Key"] for v in listed["Versions"]} == {"a", "m"}
    assert [(k, v) for k, v, _ in all_versions(s3, bucket, Prefix="dir/")[0]] == \
        [("dir/x", ids["dir/x"][0]), ("dir/x", ids["dir/x"][1]), ("dir/y", ids["dir/y"][0])]
    # key-marker alone starts after that key's versions
    assert {k for k, _, _ in all_versions(s3, bucket, KeyMarker="dir/y")[0]} == {"m"}


def test_list_versions_marker_errors(s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    error = s3_error(s3.list_object_versions, Bucket=bucket, VersionIdMarker="abc")
    assert code_and_status(error) == ("InvalidArgument", 400)
    error = s3_error(s3.list_object_versions, Bucket=bucket, KeyMarker="k", VersionIdMarker="zzz")
    assert code_and_status(error) == ("InvalidArgument", 400)


def test_reading_an_older_version_needs_read_on_it(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    versioned(s3, bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    private = s3.put_object(Bucket=bucket, Key="k", Body=b"secret")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"public", ACL="public-read")
    bob = walrus.client(BOB)
    assert bob.get_object(Bucket=bucket, Key="k")["Body"].read() == b"public"
    error = s3_error(bob.get_object, Bucket=bucket, Key="k", VersionId=private)
    assert code_and_status(error) == ("AccessDenied", 403)
    # the older version's ACL can be read and changed by its id
    s3.put_object_acl(Bucket=bucket, Key="k", VersionId=private, ACL="public-read")
    assert bob.get_object(Bucket=bucket, Key="k", VersionId=private)["Body"].read() == b"secret"


def test_aws_cli_versioning_session(walrus, s3, bucket, tmp_path):  # type: ignore[no-untyped-def]
    aws(walrus, ALICE, "s3api", "put-bucket-versioning", "--bucket", bucket,
        "--versioning-configuration", "Status=Enabled")
    status = json.loads(aws(walrus, ALICE, "s3api", "get-bucket-versioning", "--bucket",
                            bucket).stdout)
    assert status["Status"] == "Enabled"
    source = tmp_path / "f.txt"
    source.write_text("first")
    aws(walrus, ALICE, "s3", "cp", str(source), f"s3://{bucket}/f.txt")
    source.write_text("second")
    aws(walrus, ALICE, "s3", "cp", str(source), f"s3://{bucket}/f.txt")
    listed = json.loads(aws(walrus, ALICE, "s3api", "list-object-versions", "--bucket",
                            bucket).stdout)
    older = [v for v in listed["Versions"] if not v["IsLatest"]]
    assert len(listed["Versions"]) == 2 and len(older) == 1
    out = tmp_path / "out.txt"
    aws(walrus, ALICE, "s3api", "get-object", "--bucket", bucket, "--key", "f.txt",
        "--version-id", older[0]["VersionId"], str(out))
    assert out.read_text() == "first"


def test_migration_keeps_objects_stored_before_it(tmp_path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path}/walrus.db")
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url)
    command.upgrade(config, "0001")
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO buckets VALUES ('b', '111111111111', 'alice', 'us-east-1', "
                       "'2026-01-01 00:00:00', '[]')"))
        c.execute(text("INSERT INTO objects VALUES ('b', 'k', 3, 'e', '2026-01-01 00:00:00', "
                       "'text/plain', '{}', '{}', '[[\"ab\", 3]]', NULL, '111111111111', 'alice', "
                       "'[]')"))
    db.upgrade(MIGRATIONS)
    with db.engine.connect() as c:
        row = c.execute(text("SELECT key, size, segments, version_id, delete_marker FROM objects")).one()
        assert tuple(row) == ("k", 3, '[["ab", 3]]', "null", 0)
        assert c.execute(text("SELECT versioning FROM buckets")).scalar() is None
    command.downgrade(config, "0001")
    with db.engine.connect() as c:
        assert c.execute(text("SELECT key, size FROM objects")).one() == ("k", 3)


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_version_header_on_get_and_head(s3, bucket, status):  # type: ignore[no-untyped-def]
    versioned(s3, bucket, status)
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == put["VersionId"]
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == put["VersionId"]


def test_versions_and_delete_markers_come_in_one_order(s3, bucket):  # type: ignore[no-untyped-def]
    """S3 lists a key's versions and delete markers together, newest first, key by key."""
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.delete_object(Bucket=bucket, Key="a")
    s3.put_object(Bucket=bucket, Key="a", Body=b"2")
    s3.put_object(Bucket=bucket, Key="b", Body=b"3")
    bodies: list[bytes] = []

    def keep(http_response, **_):  # type: ignore[no-untyped-def]
        bodies.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        s3.list_object_versions(Bucket=bucket)
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectVersions", keep)
    root = ElementTree.fromstring(bodies[0])
    order = [(e.tag.rsplit("}", 1)[-1], e.findtext("{*}Key")) for e in root
             if e.tag.endswith(("}Version", "}DeleteMarker"))]
    assert order == [("Version", "a"), ("DeleteMarker", "a"), ("Version", "a"), ("Version", "b")]
