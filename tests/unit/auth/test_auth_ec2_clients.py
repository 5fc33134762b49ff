"""verify_ec2 against requests boto3 (SigV4, SigV2, presigned) and boto 2 really produce."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import boto.ec2.connection
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
from boto.ec2.regioninfo import RegionInfo
from botocore.auth import SigV2Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from services.auth import SCHEME_V2_QUERY, SCHEME_V4_HEADER, SCHEME_V4_QUERY, RequestView, verify_ec2
from services.errors import AuthError

ENDPOINTS = ["http://127.0.0.1:8773/", "http://127.0.0.1:8773/services/compute",
             "http://127.0.0.1:8773/services/Eucalyptus"]  # fmt: skip


def rejected(view: RequestView, now: datetime | None = None) -> AuthError:
    with pytest.raises(AuthError) as err:
        verify_ec2(view, lookup, now=now)
    return err.value


def later(minutes: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


# --- boto3 SigV4 ----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_boto3_sigv4_post_verifies_on_every_clc_path(endpoint: str) -> None:
    request = grab(make_client("ec2", endpoint), "describe_instances", InstanceIds=["i-12345678"])
    identity = verify_ec2(view_of(request), lookup)
    assert identity.access_key == ACCESS_KEY
    assert identity.scheme == SCHEME_V4_HEADER
    assert (identity.region, identity.service) == ("us-east-1", "ec2")
    assert identity.signing_key is not None and identity.amz_date is not None


def test_boto3_sigv4_with_a_changed_body_fails() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "terminate_instances", InstanceIds=["i-1"]))
    tampered = replace(view, body=view.body.replace(b"i-1", b"i-2"))
    assert (rejected(tampered).code, rejected(tampered).status) == ("AuthFailure", 401)


def test_boto3_sigv4_sent_to_another_port_fails() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    assert rejected(with_header(view, "host", "127.0.0.1:8774")).code == "AuthFailure"


def test_boto3_sigv4_with_a_declared_payload_hash_must_match_the_body() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    declared = with_header(view, "x-amz-content-sha256", hashlib.sha256(b"other").hexdigest())
    assert rejected(declared).code == "AuthFailure"


def test_boto3_sigv4_outside_fifteen_minutes_is_request_expired() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    assert verify_ec2(view, lookup, now=later(14)).access_key == ACCESS_KEY
    for minutes in (16, -16):
        error = rejected(view, now=later(minutes))
        assert (error.code, error.status) == ("RequestExpired", 400)


def test_boto3_sigv4_signed_with_an_unknown_key_fails() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    assert verify_ec2(view, lookup).access_key == ACCESS_KEY
    with pytest.raises(AuthError) as err:
        verify_ec2(view, lambda key: None)
    assert (err.value.code, err.value.status) == ("AuthFailure", 401)
    assert err.value.message == "AWS was not able to validate the provided access credentials"


# --- presigned (SigV4 query) ------------------------------------------------------------------


def test_boto3_presigned_ec2_url_verifies_and_expires() -> None:
    url = make_client("ec2", ENDPOINTS[1]).generate_presigned_url(
        "describe_regions", Params={}, ExpiresIn=600
    )
    # botocore signs an EC2 presigned URL with the operation's method, POST (empty body).
    identity = verify_ec2(url_view(url, "POST"), lookup)
    assert identity.scheme == SCHEME_V4_QUERY
    assert rejected(url_view(url, "GET")).code == "AuthFailure"
    error = rejected(url_view(url, "POST"), now=later(11))
    assert (error.code, error.status) == ("RequestExpired", 400)


def test_presigned_ec2_url_with_another_action_fails() -> None:
    url = make_client("ec2", ENDPOINTS[0]).generate_presigned_url("describe_regions", Params={})
    assert verify_ec2(url_view(url, "POST"), lookup).access_key == ACCESS_KEY
    other = url.replace("DescribeRegions", "DescribeInstances")
    assert rejected(url_view(other, "POST")).code == "AuthFailure"


def test_presigned_ec2_url_valid_longer_than_a_week_is_refused() -> None:
    url = make_client("ec2", ENDPOINTS[0]).generate_presigned_url(
        "describe_regions", Params={}, ExpiresIn=604801
    )
    error = rejected(url_view(url, "POST"))
    assert (error.code, error.status) == ("IncompleteSignature", 400)


# --- boto3 SigV2 ------------------------------------------------------------------------------


def test_boto3_sigv2_post_body_verifies() -> None:
    request = grab(make_client("ec2", ENDPOINTS[1], "v2"), "describe_instances", InstanceIds=["i-1"])
    view = view_of(request)
    assert b"SignatureVersion=2" in view.body
    identity = verify_ec2(view, lookup)
    assert identity.scheme == SCHEME_V2_QUERY and identity.access_key == ACCESS_KEY
    tampered = replace(view, body=view.body.replace(b"i-1", b"i-9"))
    assert (rejected(tampered).code, rejected(tampered).status) == ("AuthFailure", 401)


def test_botocore_sigv2_get_query_verifies() -> None:
    request = AWSRequest(
        method="GET",
        url="http://127.0.0.1:8773/services/compute",
        params={"Action": "DescribeImages", "Owner.1": "self", "Filter.1.Name": "name",
                "Filter.1.Value.1": "my image*"},
    )  # fmt: skip
    SigV2Auth(Credentials(ACCESS_KEY, SECRET_KEY)).add_auth(request)
    view = view_of(request.prepare())
    assert "Signature=" in view.raw_query and view.body == b""
    assert verify_ec2(view, lookup).scheme == SCHEME_V2_QUERY


def _hand_signed_v2(method: str, params: dict[str, str], digest: Any) -> RequestView:
    """SigV2 computed here from AWS's description, for what no client library sends."""
    pairs = "&".join(f"{quote(k, safe='')}={quote(v, safe='-_~')}" for k, v in sorted(params.items()))
    text = f"POST\n127.0.0.1:8773\n/\n{pairs}"
    mac = base64.b64encode(hmac.new(SECRET_KEY.encode(), text.encode(), digest).digest()).decode()
    body = f"{pairs}&Signature={quote(mac, safe='')}".encode()
    headers = {"host": "127.0.0.1:8773", "content-type": "application/x-www-form-urlencoded"}
    return RequestView(method, "/", "", headers, body)


def _v2_params(method: str, **extra: str) -> dict[str, str]:
    params = {"Action": "DescribeRegions", "Version": "2016-11-15", "AWSAccessKeyId": ACCESS_KEY,
              "SignatureVersion": "2", "SignatureMethod": method}  # fmt: skip
    params.update(extra)
    return params


def test_sigv2_with_hmac_sha1_verifies() -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    view = _hand_signed_v2("POST", _v2_params("HmacSHA1", Timestamp=stamp), hashlib.sha1)
    assert verify_ec2(view, lookup).scheme == SCHEME_V2_QUERY


def test_sigv2_expires_parameter_is_honoured() -> None:
    expires = later(5).strftime("%Y-%m-%dT%H:%M:%SZ")
    view = _hand_signed_v2("POST", _v2_params("HmacSHA256", Expires=expires), hashlib.sha256)
    assert verify_ec2(view, lookup).access_key == ACCESS_KEY
    error = rejected(view, now=later(6))
    assert (error.code, error.status) == ("RequestExpired", 400)


def test_sigv2_timestamp_outside_fifteen_minutes_is_request_expired() -> None:
    stamp = later(-20).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    view = _hand_signed_v2("POST", _v2_params("HmacSHA256", Timestamp=stamp), hashlib.sha256)
    assert (rejected(view).code, rejected(view).status) == ("RequestExpired", 400)


@pytest.mark.parametrize(
    "change, message_part",
    [({"SignatureVersion": "1"}, "SignatureVersion 1"),
     ({"SignatureMethod": "HmacMD5"}, "HmacMD5"),
     ({"SignatureMethod": ""}, "SignatureMethod")],
)  # fmt: skip
def test_sigv2_unsupported_or_missing_pieces_are_incomplete(change: dict[str, str], message_part: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {k: v for k, v in {**_v2_params("HmacSHA256", Timestamp=stamp), **change}.items() if v}
    error = rejected(_hand_signed_v2("POST", params, hashlib.sha256))
    assert (error.code, error.status) == ("IncompleteSignature", 400)
    assert message_part in error.message


def test_sigv2_without_timestamp_or_expires_is_incomplete() -> None:
    view = _hand_signed_v2("POST", _v2_params("HmacSHA256"), hashlib.sha256)
    assert rejected(view).code == "IncompleteSignature"


# --- boto 2 -----------------------------------------------------------------------------------


class _Ec2V2(boto2_capturing(boto.ec2.connection.EC2Connection)):  # type: ignore[misc]
    def _required_auth_capability(self) -> list[str]:
        return ["ec2"]  # how euca2ools-era code asks boto 2 for SigV2


def _boto2_request(cls: type, endpoint: str = "127.0.0.1", port: int | None = 8773) -> Any:
    connection = cls(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region=RegionInfo(name="eucalyptus", endpoint=endpoint),
        port=port,
        is_secure=False,
        path="/services/compute",
    )
    with pytest.raises(Boto2Captured) as captured:
        connection.get_all_instances(instance_ids=["i-1"])
    return captured.value.request


def test_boto2_sigv4_comma_without_space_and_guessed_scope_verifies() -> None:
    request = _boto2_request(boto2_capturing(boto.ec2.connection.EC2Connection))
    assert ",SignedHeaders=" in request.headers["Authorization"]
    identity = verify_ec2(boto2_view(request, 8773), lookup)
    # boto 2 guesses region and service from the host name 127.0.0.1.
    assert (identity.region, identity.service) == ("0", "127")


def test_boto2_sigv2_verifies() -> None:
    view = boto2_view(_boto2_request(_Ec2V2), 8773)
    assert b"SignatureVersion=2" in view.body
    assert verify_ec2(view, lookup).scheme == SCHEME_V2_QUERY


def test_boto2_sigv2_signs_the_port_its_host_header_leaves_out() -> None:
    # An endpoint written "host:port" (as EC2_URL-style settings give it) is signed with the
    # port, while the Host header boto 2 sets is cut at the colon.
    view = boto2_view(_boto2_request(_Ec2V2, "127.0.0.1:8773", None), 8773)
    assert view.headers["host"] == "127.0.0.1"
    assert verify_ec2(view, lookup).scheme == SCHEME_V2_QUERY
    # Without knowing the server's port the signature cannot be reproduced.
    assert rejected(replace(view, server_port=None)).code == "AuthFailure"


# --- requests without usable credentials ------------------------------------------------------


def test_no_credentials_at_all_is_missing_authentication_token() -> None:
    view = RequestView("POST", "/", "", {"host": "127.0.0.1:8773",
                       "content-type": "application/x-www-form-urlencoded"},
                       b"Action=DescribeRegions&Version=2016-11-15")  # fmt: skip
    error = rejected(view)
    assert (error.code, error.status) == ("MissingAuthenticationToken", 401)


@pytest.mark.parametrize(
    "authorization",
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host",
     "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ec2, SignedHeaders=host, Signature=00",
     "AWS4-HMAC-SHA256 Credential=AK/2024/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
     "AWS4-HMAC-SHA256 Credential AK, SignedHeaders=host, Signature=00",
     "AWS AK:c2lnbmF0dXJl",
     "Bearer token"],
)  # fmt: skip
def test_malformed_authorization_header_is_incomplete_signature(authorization: str) -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    error = rejected(with_header(view, "authorization", authorization))
    assert (error.code, error.status) == ("IncompleteSignature", 400)


def test_scope_date_other_than_the_request_date_is_incomplete_signature() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    authorization = view.headers["authorization"]
    day = authorization.split("/")[1]
    other = authorization.replace(f"/{day}/", "/20000101/")
    assert rejected(with_header(view, "authorization", other)).code == "IncompleteSignature"


def test_missing_date_headers_is_incomplete_signature() -> None:
    view = view_of(grab(make_client("ec2", ENDPOINTS[0]), "describe_regions"))
    assert rejected(with_header(view, "x-amz-date", None)).code == "IncompleteSignature"
