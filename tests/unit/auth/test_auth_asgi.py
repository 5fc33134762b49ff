"""view_from_asgi: requests signed by boto3, replayed into an ASGI app through httpx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from auth_clients import ACCESS_KEY, grab, lookup, make_client

from services.auth import joined_headers, verify_ec2, verify_s3, view_from_asgi
from services.errors import AuthError


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def verifying_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers 200 with who signed the request, or the AuthError's status and code."""
    body = await _read_body(receive)
    host = dict(scope["headers"]).get(b"host", b"").decode()
    bucket = host.split(".", 1)[0] if host.count(".") and host.startswith("bucket.") else None
    try:
        if scope["path"].startswith("/ec2"):
            identity = verify_ec2(view_from_asgi(scope, body), lookup)
        else:
            identity = verify_s3(view_from_asgi(scope, b"", bucket), lookup)
        status, answer = 200, {"access_key": identity.access_key if identity else None}
    except AuthError as err:
        status, answer = err.status, {"code": err.code}
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def replay(prepared: Any, **changes: Any) -> httpx.Response:
    """Send a botocore-prepared request, byte for byte, into the ASGI app."""
    body = prepared.body.read() if hasattr(prepared.body, "read") else prepared.body or b""
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()]

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=verifying_app)
        async with httpx.AsyncClient(transport=transport) as client:
            request = client.build_request(prepared.method, prepared.url, headers=headers,
                                           content=body)  # fmt: skip
            for name, value in changes.items():
                request.headers[name] = value
            return await client.send(request)

    return asyncio.run(send())


def test_s3_request_with_an_encoded_key_verifies_through_an_asgi_scope() -> None:
    prepared = grab(make_client("s3", "http://127.0.0.1:8777"), "put_object",
                    Bucket="b", Key="a b!c(1)*~.txt", Body=b"data")  # fmt: skip
    response = replay(prepared)
    assert (response.status_code, response.json()) == (200, {"access_key": ACCESS_KEY})


def test_s3_sigv2_virtual_host_request_verifies_through_an_asgi_scope() -> None:
    client = make_client("s3", "http://localhost:8777", "s3", s3={"addressing_style": "virtual"})
    prepared = grab(client, "get_object_acl", Bucket="bucket", Key="k 1")
    assert replay(prepared).json() == {"access_key": ACCESS_KEY}


def test_ec2_request_verifies_through_an_asgi_scope_and_a_tampered_one_does_not() -> None:
    prepared = grab(make_client("ec2", "http://127.0.0.1:8773/ec2"), "describe_regions")
    assert replay(prepared).json() == {"access_key": ACCESS_KEY}
    tampered = replay(prepared, host="127.0.0.1:9999")
    assert (tampered.status_code, tampered.json()) == (401, {"code": "AuthFailure"})


def test_repeated_headers_are_joined_in_order_with_commas() -> None:
    raw = [(b"Host", b"h"), (b"X-Amz-Meta-A", b"1"), (b"x-amz-meta-a", b"2 ")]
    assert joined_headers(raw) == {"host": "h", "x-amz-meta-a": "1,2 "}


def test_view_keeps_the_path_encoded_and_the_server_port() -> None:
    scope = {"type": "http", "method": "GET", "path": "/b/a b", "raw_path": b"/b/a%20b",
             "query_string": b"uploads", "headers": [(b"host", b"h:1")], "server": ("h", 8777)}  # fmt: skip
    view = view_from_asgi(scope)
    assert (view.raw_path, view.raw_query, view.server_port) == ("/b/a%20b", "uploads", 8777)
