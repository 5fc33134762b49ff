"""verify_s3 against requests boto3/botocore, boto 2 and s3cmd-style signers produce."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import boto.s3.connection
import pytest
from auth_clients import (
    ACCESS_KEY,
    SECRET_KEY,
    Boto2Captured,
    boto2_capturing,
    boto2_view,
    grab,
    lookup,
    make_client,
    replace,
    url_view,
    view_of,
    with_header,
)
from boto.s3.connection import OrdinaryCallingFormat, SubdomainCallingFormat
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from services.auth import (
    SCHEME_V2_S3_HEADER,
    SCHEME_V2_S3_QUERY,
    SCHEME_V4_HEADER,
    SCHEME_V4_QUERY,
    Identity,
    RequestView,
    chunk_signature,
    sign_v4_headers,
    trailer_signature,
    verify_s3,
)
from services.errors import AuthError

ENDPOINT = "http://127.0.0.1:8777"
AWKWARD_KEY = "a b!c'(d)*~/x//y/../z+%.txt"


def verified(view: RequestView, now: datetime | None = None) -> Identity:
    identity = verify_s3(view, lookup, now=now)
    assert identity is not None and identity.access_key == ACCESS_KEY
    return identity


def rejected(view: RequestView, now: datetime | None = None) -> AuthError:
    with pytest.raises(AuthError) as err:
        verify_s3(view, lookup, now=now)
    return err.value


def later(minutes: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


def s3v4_view(operation: str, **params: Any) -> RequestView:
    return view_of(grab(make_client("s3", ENDPOINT), operation, **params), with_body=False)


# --- boto3 SigV4 header -----------------------------------------------------------------------

OPERATIONS = [
    ("put_object", {"Bucket": "b", "Key": AWKWARD_KEY, "Body": b"hello"}),
    ("get_object", {"Bucket": "b", "Key": AWKWARD_KEY, "Range": "bytes=0-9"}),
    ("list_objects_v2", {"Bucket": "b", "Prefix": "a b/c", "Delimiter": "/"}),
    ("list_objects", {"Bucket": "b", "Marker": "x y", "MaxKeys": 5}),
    ("create_multipart_upload", {"Bucket": "b", "Key": "k"}),
    ("upload_part", {"Bucket": "b", "Key": "k", "UploadId": "up/id+=", "PartNumber": 2, "Body": b"x"}),
    ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k1"}, {"Key": "k 2"}]}}),
    ("put_bucket_tagging", {"Bucket": "b", "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
    ("head_bucket", {"Bucket": "b"}),
]  # fmt: skip


@pytest.mark.parametrize("operation, params", OPERATIONS, ids=[op for op, _ in OPERATIONS])
def test_boto3_sigv4_request_verifies(operation: str, params: dict[str, Any]) -> None:
    identity = verified(s3v4_view(operation, **params))
    assert identity.scheme == SCHEME_V4_HEADER
    assert (identity.region, identity.service) == ("us-east-1", "s3")


def test_boto3_put_object_reports_the_signed_payload_hash() -> None:
    view = s3v4_view("put_object", Bucket="b", Key=AWKWARD_KEY, Body=b"hello")
    # The key went out encoded exactly once and unnormalised, and was signed that way.
    assert view.raw_path == "/b/a%20b%21c%27%28d%29%2A~/x//y/../z%2B%25.txt"
    assert verified(view).payload_hash == hashlib.sha256(b"hello").hexdigest()


def test_boto3_sigv4_with_another_key_in_the_path_is_signature_does_not_match() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="mine")
    error = rejected(replace(view, raw_path="/b/yours"))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.extra["AWSAccessKeyId"] == ACCESS_KEY
    assert error.extra["CanonicalRequest"].startswith("GET\n/b/yours\n")
    assert error.extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert error.extra["SignatureProvided"] in view.headers["authorization"]
    assert error.extra["StringToSignBytes"].startswith("41 57 53 34")


def test_boto3_sigv4_with_a_changed_signed_header_fails() -> None:
    view = s3v4_view("put_object", Bucket="b", Key="k", Body=b"hello")
    assert rejected(with_header(view, "x-amz-checksum-crc32", "AAAAAA==")).code == "SignatureDoesNotMatch"


def test_unsigned_headers_may_change() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    assert verified(with_header(view, "user-agent", "something else")).scheme == SCHEME_V4_HEADER


def test_unknown_access_key_is_invalid_access_key_id() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    with pytest.raises(AuthError) as err:
        verify_s3(view, lambda key: None)
    assert (err.value.code, err.value.status) == ("InvalidAccessKeyId", 403)
    assert err.value.extra["AWSAccessKeyId"] == ACCESS_KEY


def test_sigv4_outside_fifteen_minutes_is_request_time_too_skewed() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    verified(view, now=later(-14))
    error = rejected(view, now=later(16))
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
    assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"


def test_sigv4_signed_with_a_date_header_instead_of_x_amz_date() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/b/k", headers={"Date": "placeholder"})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-west-1").add_auth(request)
    view = view_of(request.prepare(), with_body=False)
    assert "x-amz-date" not in view.headers
    identity = verified(view)
    assert identity.region == "eu-west-1" and identity.amz_date is not None


def test_sigv4_without_x_amz_content_sha256_is_an_invalid_request() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    error = rejected(with_header(view, "x-amz-content-sha256", None))
    assert (error.code, error.status) == ("InvalidRequest", 400)
    error = rejected(with_header(view, "x-amz-content-sha256", "not-a-hash"))
    assert (error.code, error.status) == ("InvalidArgument", 400)


@pytest.mark.parametrize(
    "authorization",
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, Signature=00",
     "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=0",
     "AWS4-ECDSA-P256-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
     "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=;, Signature=0",
     "AWS AK-without-colon"],
)  # fmt: skip
def test_malformed_authorization_header(authorization: str) -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    error = rejected(with_header(view, "authorization", authorization))
    assert (error.code, error.status) == ("AuthorizationHeaderMalformed", 400)


def test_unsupported_authorization_type_is_invalid_argument() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    error = rejected(with_header(view, "authorization", "Bearer abc"))
    assert (error.code, error.status, error.message) == ("InvalidArgument", 400, "Unsupported Authorization Type")


def test_header_and_query_authentication_together_is_invalid_argument() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    error = rejected(replace(view, raw_query="X-Amz-Algorithm=AWS4-HMAC-SHA256"))
    assert (error.code, error.status) == ("InvalidArgument", 400)


def test_anonymous_request_gives_no_identity() -> None:
    view = RequestView("GET", "/public-bucket/file.txt", "versionId=3", {"host": "127.0.0.1:8777"})
    assert verify_s3(view, lookup) is None


# --- presigned URLs ---------------------------------------------------------------------------


def test_boto3_default_presigned_url_is_sigv2_and_verifies() -> None:
    url = make_client("s3", ENDPOINT).generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": AWKWARD_KEY}, ExpiresIn=300
    )
    assert "AWSAccessKeyId=" in url
    assert verified(url_view(url)).scheme == SCHEME_V2_S3_QUERY
    error = rejected(url_view(url), now=later(6))
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert rejected(url_view(url, "DELETE")).code == "SignatureDoesNotMatch"


def test_sigv2_presigned_url_without_expires_is_access_denied() -> None:
    url = make_client("s3", ENDPOINT).generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    stripped = "&".join(p for p in url.split("&") if not p.startswith("Expires="))
    error = rejected(url_view(stripped))
    assert (error.code, error.status) == ("AccessDenied", 403)


def test_sigv2_presigned_put_with_content_type_moved_into_the_query() -> None:
    url = make_client("s3", ENDPOINT, "s3-query").generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "k", "ContentType": "text/plain"}
    )
    assert "content-type=text%2Fplain" in url
    verified(url_view(url, "PUT"))


def test_boto3_sigv4_presigned_url_verifies_expires_and_is_bound_to_its_host() -> None:
    url = make_client("s3", ENDPOINT, "s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": AWKWARD_KEY, "ResponseContentType": "a/b c"},
        ExpiresIn=120,
    )  # fmt: skip
    identity = verified(url_view(url))
    assert identity.scheme == SCHEME_V4_QUERY and identity.payload_hash == "UNSIGNED-PAYLOAD"
    error = rejected(url_view(url), now=later(3))
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert rejected(url_view(url, headers={"host": "127.0.0.1:18080"})).code == "SignatureDoesNotMatch"


def test_sigv4_presigned_url_valid_longer_than_a_week_is_refused() -> None:
    url = make_client("s3", ENDPOINT, "s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604801
    )
    error = rejected(url_view(url))
    assert (error.code, error.status) == ("AuthorizationQueryParametersError", 400)


@pytest.mark.parametrize("dropped", ["X-Amz-Date", "X-Amz-Expires", "X-Amz-Credential", "X-Amz-SignedHeaders"])
def test_sigv4_presigned_url_missing_a_parameter(dropped: str) -> None:
    url = make_client("s3", ENDPOINT, "s3v4").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    base, query = url.split("?")
    kept = "&".join(p for p in query.split("&") if not p.startswith(f"{dropped}="))
    error = rejected(url_view(f"{base}?{kept}"))
    assert (error.code, error.status) == ("AuthorizationQueryParametersError", 400)


def test_sigv4_presigned_url_with_an_unknown_key() -> None:
    url = make_client("s3", ENDPOINT, "s3v4").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    with pytest.raises(AuthError) as err:
        verify_s3(url_view(url), lambda key: None)
    assert err.value.code == "InvalidAccessKeyId"


# --- SigV2 header: boto3 (signature_version="s3"), boto 2, s3cmd -------------------------------


V2_OPERATIONS = [
    ("put_object", {"Bucket": "b", "Key": AWKWARD_KEY, "Body": b"hello", "ContentType": "text/plain",
                    "Metadata": {"colour": "blue"}}),
    ("upload_part", {"Bucket": "b", "Key": "k", "UploadId": "up/id+=", "PartNumber": 2, "Body": b"x"}),
    ("list_parts", {"Bucket": "b", "Key": "k", "UploadId": "up/id+="}),
    ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k1"}]}}),
    ("get_bucket_versioning", {"Bucket": "b"}),
    ("get_object", {"Bucket": "b", "Key": "k", "VersionId": "v 1"}),
    ("list_objects", {"Bucket": "b", "Prefix": "x y/"}),
    ("head_bucket", {"Bucket": "b"}),
    ("create_bucket", {"Bucket": "b"}),
]  # fmt: skip


@pytest.mark.parametrize("operation, params", V2_OPERATIONS, ids=[op for op, _ in V2_OPERATIONS])
def test_boto3_sigv2_request_verifies(operation: str, params: dict[str, Any]) -> None:
    view = view_of(grab(make_client("s3", ENDPOINT, "s3"), operation, **params), with_body=False)
    assert view.headers["authorization"].startswith("AWS ")
    assert verified(view).scheme == SCHEME_V2_S3_HEADER


def test_boto3_sigv2_path_style_with_response_override_verifies() -> None:
    request = grab(
        make_client("s3", ENDPOINT, "s3"), "get_object",
        Bucket="b", Key=AWKWARD_KEY, ResponseContentDisposition='attachment; filename="x y.txt"',
    )  # fmt: skip
    view = view_of(request, with_body=False)
    assert verified(view).scheme == SCHEME_V2_S3_HEADER
    error = rejected(replace(view, raw_query=view.raw_query.replace("x%20y", "x%20z")))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.extra["StringToSign"].endswith('?response-content-disposition=attachment; filename="x z.txt"')
    assert "CanonicalRequest" not in error.extra


def test_boto3_sigv2_virtual_host_verifies_with_the_bucket_from_the_host() -> None:
    client = make_client("s3", "http://localhost:8777", "s3", s3={"addressing_style": "virtual"})
    for operation, params in [("list_objects", {"Bucket": "bucket"}),
                              ("get_object_acl", {"Bucket": "bucket", "Key": "k 1"})]:  # fmt: skip
        view = view_of(grab(client, operation, **params), with_body=False, bucket="bucket")
        assert view.headers["host"] == "bucket.localhost:8777"
        verified(view)
        assert rejected(replace(view, virtual_host_bucket=None)).code == "SignatureDoesNotMatch"


def test_sigv2_header_with_an_unknown_key_and_outside_the_window() -> None:
    view = view_of(grab(make_client("s3", ENDPOINT, "s3"), "get_object", Bucket="b", Key="k"), with_body=False)
    with pytest.raises(AuthError) as err:
        verify_s3(view, lambda key: None)
    assert (err.value.code, err.value.status) == ("InvalidAccessKeyId", 403)
    assert (rejected(view, now=later(20)).code, rejected(view, now=later(20)).status) == ("RequestTimeTooSkewed", 403)
    error = rejected(with_header(view, "date", None))
    assert (error.code, error.status) == ("AccessDenied", 403)


@pytest.mark.parametrize("calling_format", [OrdinaryCallingFormat(), SubdomainCallingFormat()],
                         ids=["path", "virtual-host"])  # fmt: skip
@pytest.mark.parametrize("method, key, query", [("GET", "my key!.txt", "acl"), ("HEAD", "", ""),
                                                ("PUT", "k", "partNumber=1&uploadId=u%2B1")])  # fmt: skip
def test_boto2_sigv2_verifies(calling_format: Any, method: str, key: str, query: str) -> None:
    connection = boto2_capturing(boto.s3.connection.S3Connection)(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, host="localhost",
        port=8777, is_secure=False, calling_format=calling_format,
    )  # fmt: skip
    with pytest.raises(Boto2Captured) as captured:
        connection.make_request(method, "bucket", key, query_args=query or None)
    virtual = isinstance(calling_format, SubdomainCallingFormat)
    view = boto2_view(captured.value.request, 8777, bucket="bucket" if virtual else None)
    assert verified(view).scheme == SCHEME_V2_S3_HEADER


def _s3cmd_style(method: str, path: str, query: str, resource: str, amz_date: str) -> RequestView:
    """Signed the way s3cmd signs: only x-amz-date, sub-resource values left as sent."""
    text = f"{method}\n\n\n\nx-amz-date:{amz_date}\n{resource}"
    mac = hmac.new(SECRET_KEY.encode(), text.encode(), hashlib.sha1).digest()
    headers = {"host": "127.0.0.1:8777", "x-amz-date": amz_date,
               "authorization": f"AWS {ACCESS_KEY}:{base64.b64encode(mac).decode()}"}  # fmt: skip
    return RequestView(method, path, query, headers)


def test_s3cmd_style_sigv2_with_x_amz_date_and_undecoded_sub_resources() -> None:
    stamp = formatdate(usegmt=True)
    view = _s3cmd_style("POST", "/b/k", "uploadId=a%2Bb&uploads=", "/b/k?uploadId=a%2Bb&uploads", stamp)
    assert verified(view).scheme == SCHEME_V2_S3_HEADER
    # The same request signed botocore's way (values decoded, "=" kept) verifies as well.
    verified(_s3cmd_style("POST", "/b/k", "uploadId=a%2Bb&uploads=", "/b/k?uploadId=a+b&uploads=", stamp))


# --- aws-chunked signatures -------------------------------------------------------------------


def _streaming_identity(payload: str) -> Identity:
    now = datetime.now(timezone.utc)
    headers = {"host": "127.0.0.1:8777", "x-amz-content-sha256": payload,
               "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5"}  # fmt: skip
    headers.update(
        sign_v4_headers(
            method="PUT", canonical_uri="/b/k", raw_query="", headers=headers,
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1", service="s3",
            payload_hash=payload, now=now,
        )  # fmt: skip
    )
    return verified(RequestView("PUT", "/b/k", "", headers))


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_trailer_signature_continues_the_chunk_chain() -> None:
    identity = _streaming_identity("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
    assert identity.signing_key is not None and identity.seed_signature is not None
    first = chunk_signature(identity, identity.seed_signature, b"hello")
    last = chunk_signature(identity, first, b"")
    trailer = b"x-amz-checksum-crc32:NhCmhg==\n"
    expected = _hmac_hex(
        identity.signing_key,
        f"AWS4-HMAC-SHA256-TRAILER\n{identity.amz_date}\n{identity.scope}\n{last}\n"
        f"{hashlib.sha256(trailer).hexdigest()}",
    )
    assert trailer_signature(identity, last, trailer) == expected
    assert trailer_signature(identity, last, b"x-amz-checksum-crc32:AAAAAA==\n") != expected


def test_chunk_signature_needs_a_sigv4_identity() -> None:
    view = view_of(grab(make_client("s3", ENDPOINT, "s3"), "get_object", Bucket="b", Key="k"), with_body=False)
    with pytest.raises(ValueError):
        chunk_signature(verified(view), "0" * 64, b"data")


def test_sigv4_presigned_url_dated_in_the_future_is_too_skewed() -> None:
    url = make_client("s3", ENDPOINT, "s3v4").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    verified(url_view(url), now=later(-14))
    error = rejected(url_view(url), now=later(-16))
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)


def test_sigv4_scope_date_other_than_x_amz_date_is_malformed() -> None:
    view = s3v4_view("get_object", Bucket="b", Key="k")
    day = view.headers["authorization"].split("/")[1]
    other = view.headers["authorization"].replace(f"/{day}/", "/20000101/")
    error = rejected(with_header(view, "authorization", other))
    assert (error.code, error.status) == ("AuthorizationHeaderMalformed", 400)
