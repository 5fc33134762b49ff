"""Who is calling: the request's signature checked by services.auth, the access key mapped to
its account through a KeyDirectory (the CLC's, or a static one)."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.types import Scope

from services.auth import Identity, RequestView, verify_s3
from services.errors import AuthError, S3Error
from services.identity import KeyDirectory
from services.internal import InternalCallError
from services.messages.identity import AccessKeyInfo
from walrus.access import ANONYMOUS, Principal

CLOUD_ACCOUNT = "eucalyptus"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as one dict, read once: names in lower case (as ASGI gives
    them), a repeated header's values joined with ","."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def request_view(request: Request, headers: dict[str, str],
                 virtual_host_bucket: str | None) -> RequestView:
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return RequestView(method=request.method, raw_path=raw_path.decode("latin-1"),
                       raw_query=scope.get("query_string", b"").decode("latin-1"),
                       headers=headers, virtual_host_bucket=virtual_host_bucket)


def authenticate(view: RequestView, keys: KeyDirectory) -> tuple[Principal, Identity | None]:
    """Runs in a worker thread: the directory may ask the CLC over HTTP."""
    if view.method == "OPTIONS":
        # A CORS preflight never carries credentials; the query of a presigned URL it is sent
        # to is signed for the request that follows, not for the OPTIONS.
        return ANONYMOUS, None

    def lookup(access_key: str) -> AccessKeyInfo | None:
        try:
            return keys.lookup(access_key)
        except (InternalCallError, httpx.HTTPError) as exc:
            # The CLC owns the keys; without it no signature can be checked. 503 is retried.
            raise S3Error("ServiceUnavailable", "Cannot check the access key now: the cloud "
                          "controller did not answer. Please try again.", 503) from exc

    def secret(access_key: str) -> str | None:
        info = lookup(access_key)
        return info.secret_key if info is not None else None

    identity = verify_s3(view, secret)
    if identity is None:
        return ANONYMOUS, None
    info = lookup(identity.access_key)
    if info is None:  # removed between the two look-ups
        raise AuthError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist "
                        "in our records.", 403, AWSAccessKeyId=identity.access_key)
    principal = Principal(info.account_id, info.account_name, info.access_key,
                          cloud_admin=info.is_admin and info.account_name == CLOUD_ACCOUNT,
                          user_name=info.user_name)
    return principal, identity
