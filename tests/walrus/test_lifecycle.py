"""Lifecycle: Put/Get/DeleteBucketLifecycleConfiguration, and expiry carried out by Walrus:
current versions (deleted, or hidden behind a delete marker when versioned), noncurrent
versions, expired delete markers and incomplete multipart uploads. The test drives Walrus's
lifecycle clock through the internal route instead of waiting days."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.internal import InternalClient
from services.messages.walrus import LIFECYCLE_ROUTE, LifecycleReport, RunLifecycle
from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE
from tests.walrus.helpers import code_and_status, keys_of, s3_error
from walrus import lifecycle
from walrus.lifecycle_runner import LifecycleScheduler, Report


def run_lifecycle(walrus, days: float) -> LifecycleReport:  # type: ignore[no-untyped-def]
    """One lifecycle pass as if `days` days had passed."""
    client = InternalClient(walrus.url, "test-secret")
    try:
        now = datetime.now(timezone.utc) + timedelta(days=days)
        return client.call("POST", LIFECYCLE_ROUTE, RunLifecycle(now=now), LifecycleReport)
    finally:
        client.close()


def rule(rule_id: str, prefix: str = "", **actions) -> dict:  # type: ignore[no-untyped-def]
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **actions}


def test_put_get_delete_lifecycle_configuration(s3, bucket):  # type: ignore[no-untyped-def]
    assert code_and_status(s3_error(s3.get_bucket_lifecycle_configuration, Bucket=bucket)) == \
        ("NoSuchLifecycleConfiguration", 404)
    rules = [rule("logs", "logs/", Expiration={"Days": 30},
                  NoncurrentVersionExpiration={"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
                  AbortIncompleteMultipartUpload={"DaysAfterInitiation": 3}),
             {"ID": "tagged", "Status": "Disabled",
              "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "temp", "Value": "yes"}]}},
              "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=timezone.utc)}},
             {"ID": "cold", "Status": "Enabled", "Filter": {"Tag": {"Key": "cold", "Value": "1"}},
              "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}]}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0] == rules[0]
    assert got[1]["Filter"] == rules[1]["Filter"] and got[1]["Status"] == "Disabled"
    assert got[1]["Expiration"]["Date"] == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert got[2]["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    s3.delete_bucket_lifecycle(Bucket=bucket)
    assert code_and_status(s3_error(s3.get_bucket_lifecycle_configuration, Bucket=bucket))[0] == \
        "NoSuchLifecycleConfiguration"


@pytest.mark.parametrize("bad, code", [
    ({"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}}, "InvalidArgument"),
    (rule("x", Expiration={"Days": 0}), "InvalidArgument"),
    (rule("x", Expiration={"Date": datetime(2030, 1, 1, 12, tzinfo=timezone.utc)}),
     "InvalidArgument"),
    ({"ID": "x", "Status": "Enabled", "Filter": {"Tag": {"Key": "a", "Value": "b"}},
      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidArgument"),
])
def test_bad_lifecycle_rules_are_refused_and_change_nothing(s3, bucket, bad, code):  # type: ignore[no-untyped-def]
    kept = [rule("keep", Expiration={"Days": 5})]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": kept})
    error = s3_error(s3.put_bucket_lifecycle_configuration, Bucket=bucket,
                     LifecycleConfiguration={"Rules": [bad]})
    assert code_and_status(error) == (code, 400)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == kept


def test_duplicate_rule_ids_are_refused(s3, bucket):  # type: ignore[no-untyped-def]
    rules = [rule("same", "a/", Expiration={"Days": 1}), rule("same", "b/", Expiration={"Days": 1})]
    error = s3_error(s3.put_bucket_lifecycle_configuration, Bucket=bucket,
                     LifecycleConfiguration={"Rules": rules})
    assert code_and_status(error) == ("InvalidArgument", 400)


def test_current_objects_expire_by_prefix_when_due(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    for key in ("logs/a", "logs/b", "keep/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
        "Rules": [rule("logs", "logs/", Expiration={"Days": 2})]})
    blobs = len(walrus.stored_blobs())
    run_lifecycle(walrus, 1)
    assert keys_of(s3, bucket) == ["keep/c", "logs/a", "logs/b"]
    # due at the midnight after two days have passed
    run_lifecycle(walrus, 3.01)
    assert keys_of(s3, bucket) == ["keep/c"]
    assert len(walrus.stored_blobs()) == blobs - 2


def test_tag_and_size_filters_pick_what_expires(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="t1", Body=b"x", Tagging="temp=yes")
    s3.put_object(Bucket=bucket, Key="t2", Body=b"x", Tagging="temp=no")
    s3.put_object(Bucket=bucket, Key="big", Body=b"x" * 2000)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tag", "Status": "Enabled", "Filter": {"Tag": {"Key": "temp", "Value": "yes"}},
         "Expiration": {"Days": 1}},
        {"ID": "size", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 1000},
         "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
    run_lifecycle(walrus, 5)
    assert keys_of(s3, bucket) == ["t2"]


def test_versioned_expiry_adds_markers_then_noncurrent_versions_go(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ids = [s3.put_object(Bucket=bucket, Key="doc", Body=str(n).encode())["VersionId"]
           for n in range(4)]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("all", Expiration={"Days": 10},
             NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 1})]})
    report = run_lifecycle(walrus, 6.01)
    # the three older versions are due; the newest of them is kept (NewerNoncurrentVersions)
    assert report.noncurrent_removed == 2
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == [ids[3], ids[2]]
    report = run_lifecycle(walrus, 11.01)
    assert report.markers_added == 1
    assert keys_of(s3, bucket) == []
    listed = s3.list_object_versions(Bucket=bucket)
    assert len(listed["DeleteMarkers"]) == 1 and listed["DeleteMarkers"][0]["IsLatest"]
    # much later only the newest noncurrent version is left, kept by NewerNoncurrentVersions
    run_lifecycle(walrus, 40)
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == [ids[3]]
    assert len(listed["DeleteMarkers"]) == 1


def test_expired_object_delete_marker_is_removed(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("markers", Expiration={"ExpiredObjectDeleteMarker": True})]})
    run_lifecycle(walrus, 1)
    # the marker still hides a version: it stays
    assert len(s3.list_object_versions(Bucket=bucket)["DeleteMarkers"]) == 1
    s3.delete_object(Bucket=bucket, Key="k", VersionId=version)
    assert run_lifecycle(walrus, 1).markers_removed == 1
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=bucket)


def test_incomplete_multipart_uploads_are_aborted(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    old = s3.create_multipart_upload(Bucket=bucket, Key="uploads/a")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="uploads/a", UploadId=old, PartNumber=1, Body=b"p")
    s3.create_multipart_upload(Bucket=bucket, Key="elsewhere/b")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("abort", "uploads/", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1})]})
    blobs, unfinished = len(walrus.stored_blobs()), len(walrus.backend.unfinished())
    assert run_lifecycle(walrus, 0.5).uploads_aborted == 0
    assert run_lifecycle(walrus, 2.01).uploads_aborted == 1
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == \
        ["elsewhere/b"]
    # its part's blob on files; on a cluster, the cluster's upload that held the part
    assert (len(walrus.stored_blobs()), len(walrus.backend.unfinished())) == (
        (blobs - 1, unfinished) if walrus.backend.name == "file" else (blobs, unfinished - 1))


def test_a_put_after_the_pass_looked_is_never_expired(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("all", Expiration={"Days": 1})]})
    # "now" before the object was written: nothing is due
    assert run_lifecycle(walrus, -1).expired == 0
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"


def test_due_rounds_up_to_the_next_midnight():
    start = datetime(2026, 1, 1, 15, 30)
    assert lifecycle.due(start, 1) == datetime(2026, 1, 3)
    assert lifecycle.due(datetime(2026, 1, 1), 1) == datetime(2026, 1, 2)


def test_scheduler_runs_passes_by_its_clock():
    """The scheduler asks its clock for the moment of each pass; `run_now` wakes it."""
    import threading

    seen: list[datetime] = []
    done = threading.Event()

    class Runner:
        def run(self, now: datetime) -> Report:
            seen.append(now)
            done.set()
            return Report()

    moment = datetime(2030, 5, 1, tzinfo=timezone.utc)
    scheduler = LifecycleScheduler(Runner(), lambda: moment, interval=3600)  # type: ignore[arg-type]
    scheduler.start()
    try:
        scheduler.run_now()
        assert done.wait(30)
    finally:
        scheduler.stop()
    assert seen == [moment]



def test_aws_cli_lifecycle(walrus, s3, bucket, tmp_path):  # type: ignore[no-untyped-def]
    config = tmp_path / "lifecycle.json"
    config.write_text(json.dumps({"Rules": [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Expiration": {"Days": 2},
         "Transitions": [{"Days": 1, "StorageClass": "STANDARD_IA"}]},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}))
    aws(walrus, ALICE, "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", f"file://{config}")
    got = json.loads(aws(walrus, ALICE, "s3api", "get-bucket-lifecycle-configuration",
                         "--bucket", bucket).stdout)
    assert got["Rules"] == json.loads(config.read_text())["Rules"]
    local = tmp_path / "line.txt"
    local.write_text("a log line\n")
    for key in ("logs/today.txt", "keep/today.txt"):
        aws(walrus, ALICE, "s3", "cp", str(local), f"s3://{bucket}/{key}")
    run_lifecycle(walrus, 3)
    listed = aws(walrus, ALICE, "s3", "ls", "--recursive", f"s3://{bucket}").stdout
    assert "keep/today.txt" in listed and "logs/today.txt" not in listed
    aws(walrus, ALICE, "s3api", "delete-bucket-lifecycle", "--bucket", bucket)
    gone = aws(walrus, ALICE, "s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket,
               check=False)
    assert gone.returncode != 0 and "NoSuchLifecycleConfiguration" in gone.stderr
