"""Signatures, presigned URLs, canned and explicit ACLs, and what other accounts may not do."""

from __future__ import annotations

import time

import httpx
import pytest
from services.messages.identity import AccessKeyInfo

from tests.walrus.conftest import ALICE, BOB, CLOUD
from tests.walrus.helpers import code_and_status, keys_of, s3_error


def test_wrong_signature_is_refused_and_nothing_stored(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    forger = walrus.client(AccessKeyInfo(**{**ALICE.model_dump(), "secret_key": "wrong"}))
    error = s3_error(forger.put_object, Bucket=bucket, Key="forged", Body=b"x")
    assert code_and_status(error) == ("SignatureDoesNotMatch", 403)
    assert keys_of(s3, bucket) == []


def test_unknown_access_key(walrus, bucket):  # type: ignore[no-untyped-def]
    stranger = walrus.client(AccessKeyInfo(access_key="AKIANOBODY", secret_key="x",
                                           account_id="999999999999", account_name="x",
                                           user_name="x"))
    error = s3_error(stranger.list_objects_v2, Bucket=bucket)
    assert code_and_status(error) == ("InvalidAccessKeyId", 403)


def test_sigv2_header_signatures(walrus, bucket):  # type: ignore[no-untyped-def]
    v2 = walrus.client(ALICE, signature_version="s3")
    v2.put_object(Bucket=bucket, Key="v2 key!", Body=b"signed v2")
    assert v2.get_object(Bucket=bucket, Key="v2 key!")["Body"].read() == b"signed v2"
    assert keys_of(v2, bucket) == ["v2 key!"]


def test_other_account_gets_access_denied_everywhere(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    bob = walrus.client(BOB)
    for call, args in [(bob.get_object, {"Key": "private"}), (bob.head_object, {"Key": "private"}),
                       (bob.list_objects_v2, {}), (bob.delete_bucket, {}),
                       (bob.get_bucket_acl, {}), (bob.get_object_acl, {"Key": "private"}),
                       (bob.put_object, {"Key": "intruder", "Body": b"x"}),
                       (bob.delete_object, {"Key": "private"}),
                       (bob.create_multipart_upload, {"Key": "mp"}),
                       (bob.get_bucket_location, {}),
                       (bob.copy_object, {"Key": "stolen", "CopySource": f"{bucket}/private"})]:
        error = s3_error(call, Bucket=bucket, **args)
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403, call
    # Bob may not copy Alice's object into his own bucket either
    bob.create_bucket(Bucket=f"{bucket}-bob")
    error = s3_error(bob.copy_object, Bucket=f"{bucket}-bob", Key="stolen",
                     CopySource=f"{bucket}/private")
    assert code_and_status(error) == ("AccessDenied", 403)
    assert keys_of(s3, bucket) == ["private"]
    assert keys_of(bob, f"{bucket}-bob") == []


def test_cloud_credentials_reach_every_bucket(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="snap", Body=b"data")
    cloud = walrus.client(CLOUD)
    assert cloud.get_object(Bucket=bucket, Key="snap")["Body"].read() == b"data"


def test_public_read_object_is_readable_anonymously(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"for all", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"for me")
    assert httpx.get(f"{walrus.url}/{bucket}/public.txt").content == b"for all"
    denied = httpx.get(f"{walrus.url}/{bucket}/private.txt")
    assert denied.status_code == 403 and b"<Code>AccessDenied</Code>" in denied.content
    # listing needs READ on the bucket, which is private
    assert httpx.get(f"{walrus.url}/{bucket}").status_code == 403
    assert httpx.put(f"{walrus.url}/{bucket}/anon", content=b"x").status_code == 403
    assert keys_of(s3, bucket) == ["private.txt", "public.txt"]


def test_bucket_canned_acls(walrus, s3):  # type: ignore[no-untyped-def]
    s3.create_bucket(Bucket="acl-public-rw", ACL="public-read-write")
    assert httpx.put(f"{walrus.url}/acl-public-rw/anon", content=b"anon").status_code == 200
    listing = httpx.get(f"{walrus.url}/acl-public-rw")
    assert listing.status_code == 200 and b"<Key>anon</Key>" in listing.content
    s3.create_bucket(Bucket="acl-auth-read", ACL="authenticated-read")
    s3.put_object(Bucket="acl-auth-read", Key="k", Body=b"x", ACL="authenticated-read")
    bob = walrus.client(BOB)
    assert keys_of(bob, "acl-auth-read") == ["k"]
    assert bob.get_object(Bucket="acl-auth-read", Key="k")["Body"].read() == b"x"
    assert httpx.get(f"{walrus.url}/acl-auth-read/k").status_code == 403
    grants = s3.get_bucket_acl(Bucket="acl-auth-read")["Grants"]
    assert {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in grants} \
        == {("111111111111", "FULL_CONTROL"),
            ("http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ")}


def test_put_and_get_acls(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="shared", Body=b"x")
    acl = s3.get_object_acl(Bucket=bucket, Key="shared")
    assert acl["Owner"]["ID"] == "111111111111"
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    bob = walrus.client(BOB)
    assert code_and_status(s3_error(bob.get_object, Bucket=bucket, Key="shared"))[1] == 403
    s3.put_object_acl(Bucket=bucket, Key="shared", AccessControlPolicy={
        "Owner": acl["Owner"],
        "Grants": acl["Grants"] + [{"Grantee": {"Type": "CanonicalUser", "ID": BOB.account_id},
                                    "Permission": "READ"}]})
    assert bob.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"x"
    s3.put_object_acl(Bucket=bucket, Key="shared", ACL="private")
    assert code_and_status(s3_error(bob.get_object, Bucket=bucket, Key="shared"))[1] == 403
    s3.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{BOB.account_id}"')
    assert keys_of(bob, bucket) == ["shared"]
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert code_and_status(s3_error(bob.list_objects_v2, Bucket=bucket))[1] == 403
    error = s3_error(s3.put_bucket_acl, Bucket=bucket, ACL="no-such-canned-acl")
    assert code_and_status(error) == ("InvalidArgument", 400)


def test_presigned_v2_get_with_plain_httpx(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="shared file.txt", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket,
                                                          "Key": "shared file.txt"})
    assert "Signature=" in url and "X-Amz-" not in url
    assert httpx.get(url).content == b"presigned"
    tampered = url.replace("shared%20file.txt", "other.txt")
    assert httpx.get(tampered).status_code == 403
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "via-v2"})
    assert httpx.put(put_url, content=b"put by v2 url").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="via-v2")["Body"].read() == b"put by v2 url"


def test_presigned_v4_get_and_put(walrus, bucket):  # type: ignore[no-untyped-def]
    v4 = walrus.client(ALICE, signature_version="s3v4")
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"})
    assert "X-Amz-Signature=" in put_url
    assert httpx.put(put_url, content=b"uploaded by url").status_code == 200
    get_url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up"})
    assert httpx.get(get_url).content == b"uploaded by url"


@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_presigned_urls_expire(walrus, s3, bucket, version: str):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    client = walrus.client(ALICE, signature_version=version)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=1)
    deadline = time.monotonic() + 10
    while (answer := httpx.get(url)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 403 and b"<Code>AccessDenied</Code>" in answer.content


def test_presigned_v4_may_not_last_beyond_a_week(walrus, bucket):  # type: ignore[no-untyped-def]
    v4 = walrus.client(ALICE, signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=604801)
    answer = httpx.get(url)
    assert answer.status_code == 400
    assert b"AuthorizationQueryParametersError" in answer.content
