"""What a signature check reads (RequestView) and what it proves (Identity).

Both are plain frozen dataclasses rather than pydantic models: they never cross a service
border, they are built once per request on the hot path, and RequestView.headers is any
Mapping the web framework already has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

# access key id -> secret key, or None when the key is unknown (or disabled).
SecretLookup = Callable[[str], str | None]

SCHEME_V4_HEADER = "v4-header"
SCHEME_V4_QUERY = "v4-query"
SCHEME_V2_QUERY = "v2-query"
SCHEME_V2_S3_HEADER = "v2-s3-header"
SCHEME_V2_S3_QUERY = "v2-s3-query"


@dataclass(frozen=True)
class RequestView:
    """The parts of an HTTP request a signature covers, exactly as they arrived."""

    method: str
    # Still %-encoded (ASGI scope["raw_path"]): S3 signs the path as sent, and decoding then
    # re-encoding is not the identity (botocore encodes "!" as %21, a browser may not).
    raw_path: str
    raw_query: str
    # Lower-cased names; a repeated header's values joined with ",".
    headers: Mapping[str, str]
    # EC2: the whole form body (SigV2 may carry its parameters there, SigV4 hashes it).
    # S3: b"" -- S3 clients declare the payload hash in x-amz-content-sha256 instead.
    body: bytes = b""
    # S3 only: the bucket named by the Host header, which SigV2's resource must include.
    virtual_host_bucket: str | None = None
    # The port this server listens on (ASGI scope["server"][1]). boto 2's SigV2, given an
    # endpoint "host:port", signs the port but sends a Host header without it; knowing the
    # port lets EC2 SigV2 accept that. Optional: without it such requests get AuthFailure.
    server_port: int | None = None


@dataclass(frozen=True)
class Identity:
    """Who signed a request, and with which scheme."""

    access_key: str
    scheme: str
    region: str | None = None
    service: str | None = None
    amz_date: str | None = None  # v4: the timestamp of the string to sign, YYYYMMDDTHHMMSSZ
    # v4: the derived key, so Walrus can check aws-chunked chunk signatures without the secret.
    signing_key: bytes | None = None
    seed_signature: str | None = None  # v4: this request's signature, first link of the chain
    scope: str | None = None  # "20240101/us-east-1/s3/aws4_request"
    # v4: the payload hash the signature covers, as the canonical request used it: a hex
    # sha256, UNSIGNED-PAYLOAD or a STREAMING-* marker. Walrus checks the body against a hex
    # value (for S3 the signature only vouches for the header, not for the bytes).
    payload_hash: str | None = None
