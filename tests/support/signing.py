"""Hand-built EC2 calls signed by botocore's own signers, for tests that need a request no
well-behaved client would send (wrong secret, old timestamp, odd parameters, huge body)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock
from urllib.parse import urlencode

import httpx
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@contextmanager
def clock(at: dt.datetime) -> Iterator[None]:
    """Make botocore sign as if it were `at` (its signers read the time through one function)."""
    with mock.patch.object(auth, "get_current_datetime", lambda: at.replace(tzinfo=None)):
        yield


def signed_ec2_call(url: str, params: Mapping[str, str] | None, access_key: str, secret_key: str,
                    region: str = "eucalyptus", body: bytes | None = None, path: str = "/",
                    version: str = "v4") -> httpx.Response:
    # botocore's SigV2 signer adds its fields to a dict body; SigV4 signs the encoded bytes.
    data: bytes | dict[str, str] = body if body is not None else urlencode(dict(params or {})).encode()
    if version == "v2":
        data = dict(params or {})
    request = AWSRequest(method="POST", url=url.rstrip("/") + path, data=data,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    credentials = Credentials(access_key, secret_key)
    if version == "v4":
        auth.SigV4Auth(credentials, "ec2", region).add_auth(request)
    else:
        auth.SigV2Auth(credentials).add_auth(request)
    prepared = request.prepare()
    return httpx.post(prepared.url, content=prepared.body, headers=dict(prepared.headers), timeout=30)
