"""Helpers: requests as real clients (boto3/botocore, boto 2) put them on the wire.

Clients are stopped at their send boundary (botocore's before-send event, boto 2's _mexe),
after serializing and signing, so what the tests verify is exactly what would have been
sent; nothing of services.auth is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from services.auth import RequestView

ACCESS_KEY = "AKIDEUCASIMTEST00001"
SECRET_KEY = "eucasim/secret+key/for/unit/tests0000000"
SECRETS = {ACCESS_KEY: SECRET_KEY}


def lookup(access_key: str) -> str | None:
    return SECRETS.get(access_key)


class Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def _stop(request: Any, **_: Any) -> None:
    raise Captured(request)


def grab(client: Any, operation: str, **params: Any) -> Any:
    """The AWSPreparedRequest botocore would have sent for one call."""
    client.meta.events.register("before-send", _stop)
    try:
        getattr(client, operation)(**params)
    except Captured as captured:
        return captured.request
    raise AssertionError(f"{operation} sent nothing")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def view_of(prepared: Any, *, with_body: bool = True, bucket: str | None = None) -> RequestView:
    """A RequestView of a botocore AWSPreparedRequest, as the ASGI server would show it."""
    split = urlsplit(prepared.url)
    headers = {name.lower(): _text(value) for name, value in prepared.headers.items()}
    # The HTTP client adds Host from the URL (port included unless it is the default).
    headers.setdefault("host", split.netloc)
    body = prepared.body if with_body else b""
    if body is None or hasattr(body, "read"):
        body = b""
    return RequestView(
        method=prepared.method,
        raw_path=split.path or "/",
        raw_query=split.query,
        headers=headers,
        body=body.encode("utf-8") if isinstance(body, str) else body,
        virtual_host_bucket=bucket,
        server_port=split.port,
    )


def url_view(
    url: str, method: str = "GET", headers: Mapping[str, str] | None = None, bucket: str | None = None
) -> RequestView:
    """A RequestView of a presigned URL fetched by a plain HTTP client (curl, a browser)."""
    split = urlsplit(url)
    all_headers = {"host": split.netloc}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return RequestView(method, split.path or "/", split.query, all_headers, b"", bucket)


def replace(view: RequestView, **changes: Any) -> RequestView:
    fields = {
        "method": view.method,
        "raw_path": view.raw_path,
        "raw_query": view.raw_query,
        "headers": dict(view.headers),
        "body": view.body,
        "virtual_host_bucket": view.virtual_host_bucket,
        "server_port": view.server_port,
    }
    fields.update(changes)
    return RequestView(**fields)


def with_header(view: RequestView, name: str, value: str | None) -> RequestView:
    headers = dict(view.headers)
    if value is None:
        headers.pop(name, None)
    else:
        headers[name] = value
    return replace(view, headers=headers)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def make_client(service: str, endpoint: str, signature_version: str | None = None, **config: Any) -> Any:
    """A boto3 client with the test credentials, one attempt, the given signature version."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version=signature_version, retries={"max_attempts": 1}, **config),
    )


class Boto2Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def boto2_capturing(base: type) -> type:
    """A boto 2 connection class that signs each request and stops just before sending it."""

    class Capturing(base):  # type: ignore[misc, valid-type]
        def _mexe(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.authorize(connection=self)
            # What _mexe does next for non-S3 connections: boto 2 sets Host itself.
            if "s3" not in self._required_auth_capability() and not request.headers.get("Host"):
                self.set_host_header(request)
            raise Boto2Captured(request)

    return Capturing


def boto2_view(request: Any, server_port: int, bucket: str | None = None) -> RequestView:
    """A RequestView of a boto 2 HTTPRequest as http.client would put it on the wire."""
    headers = {name.lower(): str(value) for name, value in request.headers.items()}
    # http.client adds "Host: host[:port]" when boto 2 did not set one (S3 connections).
    headers.setdefault("host", request.host if ":" in request.host else f"{request.host}:{request.port}")
    path, _, query = request.path.partition("?")
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    return RequestView(request.method, path, query, headers, body, bucket, server_port)
