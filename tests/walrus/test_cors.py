"""CORS: Put/Get/DeleteBucketCors, the browser's preflight (OPTIONS) against buckets, objects
and presigned URLs, and the Access-Control-* headers of actual requests from an allowed
origin, as a browser would send them (httpx stands in for the browser)."""

from __future__ import annotations

import json

import httpx

from tests.walrus.clients import aws
from tests.walrus.conftest import ALICE, BOB
from tests.walrus.helpers import code_and_status, s3_error

SITE = "https://app.example.com"
RULES = {"CORSRules": [
    {"ID": "site", "AllowedOrigins": [SITE], "AllowedMethods": ["GET", "PUT", "HEAD"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]}


def preflight(url: str, origin: str | None, method: str | None,
              headers: str | None = None) -> httpx.Response:
    sent = {}
    if origin:
        sent["Origin"] = origin
    if method:
        sent["Access-Control-Request-Method"] = method
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=sent)


def test_put_get_delete_bucket_cors(s3, bucket):  # type: ignore[no-untyped-def]
    assert code_and_status(s3_error(s3.get_bucket_cors, Bucket=bucket)) == \
        ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0] == RULES["CORSRules"][0]
    assert rules[1]["AllowedOrigins"] == ["*"] and rules[1]["AllowedMethods"] == ["GET"]
    s3.delete_bucket_cors(Bucket=bucket)
    assert code_and_status(s3_error(s3.get_bucket_cors, Bucket=bucket)) == \
        ("NoSuchCORSConfiguration", 404)


def test_bad_cors_configuration_is_refused_and_changes_nothing(s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    bad = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}
    assert code_and_status(s3_error(s3.put_bucket_cors, Bucket=bucket,
                                    CORSConfiguration=bad)) == ("InvalidRequest", 400)
    bad = {"CORSRules": [{"AllowedOrigins": ["*.*.example.com"], "AllowedMethods": ["GET"]}]}
    assert code_and_status(s3_error(s3.put_bucket_cors, Bucket=bucket,
                                    CORSConfiguration=bad)) == ("InvalidRequest", 400)
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 2


def test_only_the_owner_manages_cors(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    bob = walrus.client(BOB)
    assert code_and_status(s3_error(bob.put_bucket_cors, Bucket=bucket,
                                    CORSConfiguration=RULES)) == ("AccessDenied", 403)
    assert code_and_status(s3_error(s3.get_bucket_cors, Bucket=bucket))[0] == \
        "NoSuchCORSConfiguration"


def test_preflight_allowed_and_refused(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    url = f"{walrus.url}/{bucket}/photo.jpg"
    answer = preflight(url, SITE, "GET")
    assert answer.status_code == 403 and b"CORS is not enabled" in answer.content
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    answer = preflight(url, SITE, "PUT", "Content-Type, X-Amz-Date")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SITE
    assert answer.headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert answer.headers["access-control-allow-headers"] == "content-type, x-amz-date"
    assert answer.headers["access-control-max-age"] == "600"
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-expose-headers"] == "ETag"
    # any origin may GET, through the wildcard rule
    answer = preflight(f"{walrus.url}/{bucket}", "https://other.example", "GET")
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    # refused: a method, a header or an origin no rule allows
    assert preflight(url, "https://other.example", "PUT").status_code == 403
    assert preflight(url, SITE, "DELETE").status_code == 403
    assert preflight(url, SITE, "PUT", "x-custom").status_code == 403
    answer = preflight(url, None, "GET")
    assert answer.status_code == 400 and b"Origin" in answer.content
    assert preflight(f"{walrus.url}/no-such-bucket-here/k", SITE, "GET").status_code == 404


def test_actual_requests_carry_cors_headers_even_on_errors(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    answer = httpx.get(url, headers={"Origin": SITE})
    assert answer.status_code == 200 and answer.content == b"x"
    assert answer.headers["access-control-allow-origin"] == SITE
    assert answer.headers["access-control-expose-headers"] == "ETag"
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    answer = httpx.get(missing, headers={"Origin": SITE})
    assert answer.status_code == 404 and answer.headers["access-control-allow-origin"] == SITE
    # no Origin, or an origin no rule allows: no CORS headers
    assert "access-control-allow-origin" not in httpx.get(url).headers
    answer = httpx.put(s3.generate_presigned_url("put_object", Params={"Bucket": bucket,
                                                                        "Key": "k"}),
                       content=b"y", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_presigned_put_from_a_browser(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "upload"})
    # the preflight goes to the presigned URL itself, with no credentials of its own
    answer = preflight(url, SITE, "PUT", "content-type")
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SITE
    answer = httpx.put(url, content=b"from the browser", headers={"Origin": SITE})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SITE
    assert s3.get_object(Bucket=bucket, Key="upload")["Body"].read() == b"from the browser"
    head = httpx.head(s3.generate_presigned_url("head_object", Params={"Bucket": bucket,
                                                                        "Key": "upload"}),
                      headers={"Origin": SITE})
    assert head.status_code == 200 and head.headers["access-control-allow-origin"] == SITE


def test_aws_cli_cors(walrus, s3, bucket, tmp_path):  # type: ignore[no-untyped-def]
    config = tmp_path / "cors.json"
    config.write_text(json.dumps({"CORSRules": [
        {"ID": "site", "AllowedOrigins": [SITE], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300}]}))
    aws(walrus, ALICE, "s3api", "put-bucket-cors", "--bucket", bucket,
        "--cors-configuration", f"file://{config}")
    got = json.loads(aws(walrus, ALICE, "s3api", "get-bucket-cors", "--bucket", bucket).stdout)
    assert got == json.loads(config.read_text())
    allowed = preflight(f"{walrus.url}/{bucket}/page.html", SITE, "PUT", "content-type")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert allowed.headers["access-control-max-age"] == "300"
    aws(walrus, ALICE, "s3api", "delete-bucket-cors", "--bucket", bucket)
    gone = aws(walrus, ALICE, "s3api", "get-bucket-cors", "--bucket", bucket, check=False)
    assert gone.returncode != 0 and "NoSuchCORSConfiguration" in gone.stderr
    assert preflight(f"{walrus.url}/{bucket}/page.html", SITE, "PUT").status_code == 403
