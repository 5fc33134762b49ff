"""Build a RequestView from an ASGI scope, the way both the CLC and Walrus receive requests.

Frameworks decode what a signature covers (Starlette's request.url.path is %-decoded, its
Headers.get returns only the first of repeated headers), so the view is built from the raw
scope instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.auth.model import RequestView


def joined_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with "," in arrival order (SigV4's rule)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        # HTTP header bytes are ISO-8859-1 by definition; names are ASCII.
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def view_from_asgi(
    scope: Mapping[str, Any], body: bytes = b"", virtual_host_bucket: str | None = None
) -> RequestView:
    """The RequestView of an ASGI HTTP scope (pass the body for EC2, b"" for S3)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    # ASGI says raw_path is the path alone; some servers have included the query, so cut it.
    path = raw_path.split(b"?", 1)[0].decode("utf-8", "replace") or "/"
    server = scope.get("server")
    return RequestView(
        method=scope["method"],
        raw_path=path,
        raw_query=scope.get("query_string", b"").decode("utf-8", "replace"),
        headers=joined_headers(scope.get("headers", [])),
        body=body,
        virtual_host_bucket=virtual_host_bucket,
        server_port=server[1] if server and server[1] is not None else None,
    )
