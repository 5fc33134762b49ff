"""Calls between services: JSON bodies (pydantic models from services/messages) over HTTP,
each signed with the cloud's shared secret and carrying the user's request id.

Signature = hex HMAC-SHA256(secret, METHOD \\n path \\n sha256(body) \\n timestamp). The server
side (`verify_internal`) refuses unsigned, mis-signed or stale calls with 403."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, TypeVar

import httpx
from fastapi import HTTPException, Request
from pydantic import BaseModel

from services.faults import PROCESS
from services.tracing import REQUEST_ID_HEADER, current_request_id, new_request_id

SIGNATURE_HEADER = "x-eucasim-signature"
TIMESTAMP_HEADER = "x-eucasim-timestamp"
MAX_SKEW_SECONDS = 300

Model = TypeVar("Model", bound=BaseModel)


def sign(secret: str, method: str, path: str, body: bytes, timestamp: str) -> str:
    message = "\n".join([method.upper(), path, hashlib.sha256(body).hexdigest(), timestamp])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class InternalCallError(Exception):
    """The other service answered with an error; `status` and `detail` say what."""

    def __init__(self, status: int, detail: Any, url: str) -> None:
        super().__init__(f"{url}: {status} {detail}")
        self.status = status
        self.detail = detail


def _signed(http: httpx.Client | httpx.AsyncClient, secret: str, method: str, path: str,
            body: BaseModel | None) -> httpx.Request:
    payload = body.model_dump_json().encode() if body is not None else b""
    request = http.build_request(method, path, content=payload)
    # The full path as it goes on the wire, so a URL prefix (several simulated nodes behind one
    # NC process) is covered by the signature too.
    request.headers.update(signed_headers(secret, method, request.url.raw_path.decode(), payload))
    request.headers["content-type"] = "application/json"
    return request


def signed_headers(secret: str, method: str, wire_path: str, body: bytes = b"") -> dict[str, str]:
    """The headers that make a call to an `/internal/…` route acceptable; `wire_path` is the
    path and query exactly as sent. For callers that stream with their own HTTP client."""
    timestamp = str(int(time.time() + PROCESS.skew_s))
    return {TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, method, wire_path, body, timestamp),
            REQUEST_ID_HEADER: current_request_id() or new_request_id()}


def _decode(response: httpx.Response, model: type[Model] | None) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise InternalCallError(response.status_code, detail, str(response.url))
    if model is None:
        return response.json() if response.content else None
    return model.model_validate_json(response.content)


class InternalClient:
    """Synchronous client for one service's internal API. `transport` lets tests route the
    calls straight into an ASGI app or a mock-free in-process server."""

    def __init__(self, base_url: str, secret: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)

    def call(self, method: str, path: str, body: BaseModel | None = None,
             response: type[Model] | None = None) -> Any:
        PROCESS.check_link(self.base_url)
        request = _signed(self._http, self._secret, method, path, body)
        return _decode(self._http.send(request), response)

    def close(self) -> None:
        self._http.close()


class AsyncInternalClient:
    """The asyncio twin of InternalClient, for loops that poll many services at once."""

    def __init__(self, base_url: str, secret: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)

    async def call(self, method: str, path: str, body: BaseModel | None = None,
                   response: type[Model] | None = None) -> Any:
        PROCESS.check_link(self.base_url)
        request = _signed(self._http, self._secret, method, path, body)
        return _decode(await self._http.send(request), response)

    async def aclose(self) -> None:
        await self._http.aclose()


class InternalAuth:
    """FastAPI dependency guarding `/internal/…` routes: `Depends(InternalAuth(secret))`."""

    def __init__(self, secret: str, *, skewed: bool = True) -> None:
        self._secret = secret
        # False for the route that clears an injected clock-skew, which must stay reachable.
        self._skewed = skewed

    async def __call__(self, request: Request) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise HTTPException(403, "internal routes need a signed call from another eucasim service")
        try:
            skew = abs(time.time() + (PROCESS.skew_s if self._skewed else 0.0) - int(timestamp))
        except ValueError:
            raise HTTPException(403, "malformed internal timestamp") from None
        if skew > MAX_SKEW_SECONDS:
            raise HTTPException(403, f"internal call timestamp is {int(skew)} s away from this host's clock")
        body = await request.body()
        path = request.scope.get("raw_path", b"").decode() or request.url.path
        query = request.scope.get("query_string", b"").decode()
        if query:
            path = f"{path}?{query}"
        expected = sign(self._secret, request.method, path, body, timestamp)
        if not hmac.compare_digest(expected, signature):
            raise HTTPException(403, "internal call signature does not match")
