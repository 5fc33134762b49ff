"""Bucket policies: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus, S3's checks of the
document, and evaluation on every request together with the ACLs: principals, actions and
resources with wildcards, and the conditions aws:SourceIp, s3:prefix, aws:SecureTransport."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, s3_error


def statement(effect: str, principal, action, resource, **condition) -> dict:  # type: ignore[no-untyped-def]
    body = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if condition:
        body["Condition"] = condition
    return body


def put_policy(s3, bucket: str, *statements: dict) -> None:  # type: ignore[no-untyped-def]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                           "Statement": list(statements)}))


def public_read(bucket: str) -> dict:
    return statement("Allow", "*", "s3:GetObject", f"arn:aws:s3:::{bucket}/*")


def test_put_get_delete_policy_and_status(s3, bucket):  # type: ignore[no-untyped-def]
    assert code_and_status(s3_error(s3.get_bucket_policy, Bucket=bucket)) == \
        ("NoSuchBucketPolicy", 404)
    document = json.dumps({"Version": "2012-10-17", "Statement": [public_read(bucket)]})
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == document
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    put_policy(s3, bucket, statement("Allow", {"AWS": "222222222222"}, "s3:GetObject",
                                     f"arn:aws:s3:::{bucket}/*"))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.delete_bucket_policy(Bucket=bucket)
    assert code_and_status(s3_error(s3.get_bucket_policy, Bucket=bucket)) == \
        ("NoSuchBucketPolicy", 404)


def test_malformed_policies_are_refused_and_change_nothing(s3, bucket):  # type: ignore[no-untyped-def]
    put_policy(s3, bucket, public_read(bucket))
    kept = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    bad = [
        "not json",
        json.dumps({"Statement": [statement("Maybe", "*", "s3:GetObject", f"arn:aws:s3:::{bucket}/*")]}),
        json.dumps({"Statement": [statement("Allow", "*", "ec2:RunInstances", f"arn:aws:s3:::{bucket}/*")]}),
        json.dumps({"Statement": [statement("Allow", "*", "s3:GetObject", "arn:aws:s3:::other-bucket/*")]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                   "Resource": f"arn:aws:s3:::{bucket}/*"}]}),
        json.dumps({"Statement": [statement("Allow", "*", "s3:GetObject", f"arn:aws:s3:::{bucket}/*",
                                            Sometimes={"aws:SourceIp": "1.2.3.4"})]}),
    ]
    for document in bad:
        error = s3_error(s3.put_bucket_policy, Bucket=bucket, Policy=document)
        assert code_and_status(error) == ("MalformedPolicy", 400), document
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == kept


def test_public_read_policy_makes_objects_readable_anonymously(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"<h1>hi</h1>")
    url = f"{walrus.url}/{bucket}/site/index.html"
    assert httpx.get(url).status_code == 403
    put_policy(s3, bucket, public_read(bucket))
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b"<h1>hi</h1>"
    # reading is all it grants: no listing, no writing
    assert httpx.get(f"{walrus.url}/{bucket}").status_code == 403
    assert httpx.put(f"{walrus.url}/{bucket}/x", content=b"x").status_code == 403
    # a missing key is 403 without s3:ListBucket, so keys cannot be probed
    assert httpx.get(f"{walrus.url}/{bucket}/site/missing").status_code == 403


def test_policy_grants_another_account_by_arn_and_wildcard_resource(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    bob = walrus.client(BOB)
    s3.put_object(Bucket=bucket, Key="shared/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="private/b", Body=b"b")
    put_policy(s3, bucket,
               statement("Allow", {"AWS": "arn:aws:iam::222222222222:root"},
                         ["s3:Get*", "s3:PutObject"], f"arn:aws:s3:::{bucket}/shared/*"),
               statement("Allow", {"AWS": ["222222222222"]}, "s3:ListBucket",
                         f"arn:aws:s3:::{bucket}"))
    assert bob.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"a"
    bob.put_object(Bucket=bucket, Key="shared/from-bob", Body=b"bob")
    assert code_and_status(s3_error(bob.get_object, Bucket=bucket, Key="private/b")) == \
        ("AccessDenied", 403)
    assert code_and_status(s3_error(bob.put_object, Bucket=bucket, Key="private/x", Body=b"x")) \
        == ("AccessDenied", 403)
    assert sorted(o["Key"] for o in bob.list_objects_v2(Bucket=bucket)["Contents"]) == \
        ["private/b", "shared/a", "shared/from-bob"]
    # with s3:ListBucket a missing key is a 404 for Bob
    assert code_and_status(s3_error(bob.get_object, Bucket=bucket, Key="shared/none")) == \
        ("NoSuchKey", 404)


def test_explicit_deny_beats_the_owners_acl_and_an_allow(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="locked/k", Body=b"x")
    s3.put_object(Bucket=bucket, Key="open/k", Body=b"y")
    put_policy(s3, bucket, statement("Allow", "*", "s3:*", f"arn:aws:s3:::{bucket}/*"),
               statement("Deny", "*", ["s3:GetObject", "s3:DeleteObject"],
                         f"arn:aws:s3:::{bucket}/locked/*"))
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="locked/k")) == \
        ("AccessDenied", 403)
    assert code_and_status(s3_error(s3.delete_object, Bucket=bucket, Key="locked/k")) == \
        ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="open/k")["Body"].read() == b"y"
    # a batch delete is decided key by key
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "locked/k"},
                                                                  {"Key": "open/k"}]})
    assert [e["Key"] for e in result["Errors"]] == ["locked/k"]
    assert [d["Key"] for d in result["Deleted"]] == ["open/k"]
    # the owner can always read and remove the policy that locks it out
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="locked/k")["Body"].read() == b"x"


def test_deny_by_source_ip(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    put_policy(s3, bucket, statement("Deny", "*", "s3:*", [f"arn:aws:s3:::{bucket}",
                                                           f"arn:aws:s3:::{bucket}/*"],
                                     NotIpAddress={"aws:SourceIp": ["10.0.0.0/8"]}))
    assert code_and_status(s3_error(s3.get_object, Bucket=bucket, Key="k")) == ("AccessDenied", 403)
    assert code_and_status(s3_error(s3.list_objects_v2, Bucket=bucket)) == ("AccessDenied", 403)
    put_policy(s3, bucket, statement("Deny", "*", "s3:*", [f"arn:aws:s3:::{bucket}",
                                                           f"arn:aws:s3:::{bucket}/*"],
                                     NotIpAddress={"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_listing_limited_to_a_prefix_with_s3_prefix(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    bob = walrus.client(BOB)
    for key in ("home/bob/notes", "home/carol/diary"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    put_policy(s3, bucket, statement("Allow", {"AWS": "222222222222"}, "s3:ListBucket",
                                     f"arn:aws:s3:::{bucket}",
                                     StringLike={"s3:prefix": ["home/bob/*", "home/bob/"]}))
    listed = bob.list_objects_v2(Bucket=bucket, Prefix="home/bob/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/bob/notes"]
    # a prefix the caller may not read, and no prefix at all
    assert code_and_status(s3_error(bob.list_objects_v2, Bucket=bucket, Prefix="home/carol/")) \
        == ("AccessDenied", 403)
    assert code_and_status(s3_error(bob.list_objects_v2, Bucket=bucket)) == ("AccessDenied", 403)


def test_secure_transport_condition(walrus, walrus_tls, s3):  # type: ignore[no-untyped-def]
    for server in (walrus, walrus_tls):
        client = server.client(ALICE)
        # each server meets this test once per backend of the other
        name = f"tls-policy-{'s' if server.ca_bundle else 'p'}-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="k", Body=b"x")
        put_policy(client, name, statement("Deny", "*", "s3:GetObject", f"arn:aws:s3:::{name}/*",
                                           Bool={"aws:SecureTransport": "false"}))
        if server.ca_bundle:
            assert client.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
        else:
            assert code_and_status(s3_error(client.get_object, Bucket=name, Key="k")) == \
                ("AccessDenied", 403)


def test_only_the_owner_manages_the_policy(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    bob = walrus.client(BOB)
    put_policy(s3, bucket, statement("Allow", "*", "s3:*", [f"arn:aws:s3:::{bucket}",
                                                            f"arn:aws:s3:::{bucket}/*"]))
    assert code_and_status(s3_error(bob.get_bucket_policy, Bucket=bucket)) == ("AccessDenied", 403)
    assert code_and_status(s3_error(bob.delete_bucket_policy, Bucket=bucket)) == \
        ("AccessDenied", 403)
    error = s3_error(bob.put_bucket_policy, Bucket=bucket, Policy=json.dumps(
        {"Statement": [statement("Deny", "*", "s3:*", f"arn:aws:s3:::{bucket}/*")]}))
    assert code_and_status(error) == ("AccessDenied", 403)
    assert "s3:*" in s3.get_bucket_policy(Bucket=bucket)["Policy"]


def test_copy_source_is_read_under_its_buckets_policy(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    bob = walrus.client(BOB)
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    bob.create_bucket(Bucket=f"{bucket}-bob")
    error = s3_error(bob.copy_object, Bucket=f"{bucket}-bob", Key="copy",
                     CopySource={"Bucket": bucket, "Key": "src"})
    assert code_and_status(error) == ("AccessDenied", 403)
    put_policy(s3, bucket, public_read(bucket))
    bob.copy_object(Bucket=f"{bucket}-bob", Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert bob.get_object(Bucket=f"{bucket}-bob", Key="copy")["Body"].read() == b"data"


def test_aws_cli_policy(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    document = json.dumps({"Version": "2012-10-17", "Statement": [public_read(bucket)]})
    aws(walrus, ALICE, "s3api", "put-bucket-policy", "--bucket", bucket, "--policy", document)
    got = json.loads(aws(walrus, ALICE, "s3api", "get-bucket-policy", "--bucket", bucket).stdout)
    assert json.loads(got["Policy"]) == json.loads(document)
    status = json.loads(aws(walrus, ALICE, "s3api", "get-bucket-policy-status", "--bucket",
                            bucket).stdout)
    assert status == {"PolicyStatus": {"IsPublic": True}}
    s3.put_object(Bucket=bucket, Key="shared", Body=b"for everyone")
    assert httpx.get(f"{walrus.url}/{bucket}/shared").content == b"for everyone"
    aws(walrus, ALICE, "s3api", "delete-bucket-policy", "--bucket", bucket)
    gone = aws(walrus, ALICE, "s3api", "get-bucket-policy", "--bucket", bucket, check=False)
    assert gone.returncode != 0 and "NoSuchBucketPolicy" in gone.stderr
    assert httpx.get(f"{walrus.url}/{bucket}/shared").status_code == 403
