"""Times no honest client sends (beyond the year 9999, offsets UTC cannot hold, other scripts'
digits) are refused with the protocol's code, never a failure of the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone

import pytest

from services.auth import RequestView, verify_ec2, verify_s3
from services.auth.timestamps import parse_any, parse_http_date, parse_iso8601
from services.errors import AuthError

SECRET = "hostile-secret"


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == "AKIDHOSTILE" else None


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                                  "²⁰²⁴-01-01T00:00:00Z"])
def test_times_utc_cannot_hold_read_as_no_time(text: str):
    assert parse_any(text) is None
    assert parse_iso8601(text) is None or parse_iso8601(text).tzinfo is timezone.utc
    assert parse_http_date(text) is None or parse_http_date(text).tzinfo is timezone.utc


def test_times_are_read_into_utc():
    assert parse_iso8601("2024-01-02T03:04:05+02:00") == datetime(2024, 1, 2, 1, 4, 5,
                                                                    tzinfo=timezone.utc)


def _v2_query_view(expires: str) -> RequestView:
    text = f"GET\n\n\n{expires}\n/bucket/key"
    signature = base64.b64encode(hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).digest())
    query = f"AWSAccessKeyId=AKIDHOSTILE&Expires={expires}&Signature=" + \
        signature.decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return RequestView(method="GET", raw_path="/bucket/key", raw_query=query,
                       headers={"host": "s3.example"})


def test_s3_sigv2_expires_beyond_the_year_9999_has_not_expired():
    assert verify_s3(_v2_query_view("99999999999999999999"), lookup).access_key == "AKIDHOSTILE"


@pytest.mark.parametrize("expires", ["²²", "1e9", "-1"])
def test_s3_sigv2_expires_not_in_ascii_digits_is_access_denied(expires: str):
    with pytest.raises(AuthError) as refused:
        verify_s3(_v2_query_view(expires), lookup)
    assert (refused.value.code, refused.value.status) == ("AccessDenied", 403)


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_s3_sigv2_header_date_utc_cannot_hold_is_access_denied(date: str):
    view = RequestView(method="GET", raw_path="/bucket/key", raw_query="",
                       headers={"host": "s3.example", "date": date,
                                "authorization": "AWS AKIDHOSTILE:c2lnbmF0dXJl"})
    with pytest.raises(AuthError) as refused:
        verify_s3(view, lookup)
    assert (refused.value.code, refused.value.status) == ("AccessDenied", 403)


def test_ec2_sigv2_timestamp_utc_cannot_hold_is_incomplete_signature():
    query = ("Action=DescribeRegions&AWSAccessKeyId=AKIDHOSTILE&SignatureVersion=2&"
             "SignatureMethod=HmacSHA256&Signature=x&Timestamp=0001-01-01T00%3A00%3A00%2B05%3A00")
    view = RequestView(method="GET", raw_path="/", raw_query=query, headers={"host": "ec2"})
    with pytest.raises(AuthError) as refused:
        verify_ec2(view, lookup)
    assert (refused.value.code, refused.value.status) == ("IncompleteSignature", 400)


def test_ec2_sigv4_date_utc_cannot_hold_is_refused_not_failed():
    view = RequestView(method="POST", raw_path="/", raw_query="", body=b"Action=DescribeRegions",
                       headers={"host": "ec2", "x-amz-date": "0001-01-01T00:00:00+05:00",
                                "authorization": "AWS4-HMAC-SHA256 Credential=AKIDHOSTILE/"
                                "00010101/eucalyptus/ec2/aws4_request, SignedHeaders=host;"
                                "x-amz-date, Signature=" + "0" * 64})
    with pytest.raises(AuthError) as refused:
        verify_ec2(view, lookup)
    assert refused.value.status == 400
