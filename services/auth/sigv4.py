"""Signature Version 4: parsing what the client sent, and the canonical request arithmetic.

Pure functions, no policy: whether a failure is "IncompleteSignature" or
"AuthorizationHeaderMalformed" is decided by the caller (see failures.py). Parse errors are
ValueErrors whose message a client can act on.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.auth.encoding import trimall, v4_canonical_query
from services.auth.model import Identity
from services.auth.timestamps import to_amz_date

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credential:
    """Credential=AKID/20150830/us-east-1/service/aws4_request."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True)
class V4Signature:
    """The three parts of a SigV4 Authorization header (or of the X-Amz-* query)."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str


def parse_credential(text: str) -> Credential:
    # Region and service are whatever the client put there: boto 2 derives them from the
    # host name, so 127.0.0.1 gives ".../0/127/aws4_request".
    parts = text.strip().split("/")
    if len(parts) != 5 or not all(parts):
        raise ValueError(
            f"the Credential '{text}' must look like <access key>/<YYYYMMDD>/<region>/<service>/"
            f"{TERMINATOR}"
        )
    access_key, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise ValueError(f"the Credential must end with '{TERMINATOR}', not '{terminator}'")
    if len(date) != 8 or not (date.isascii() and date.isdigit()):
        raise ValueError(f"the Credential date '{date}' is not in YYYYMMDD form")
    return Credential(access_key, date, region, service)


def parse_signed_headers(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in text.split(";"))
    if not names or not all(names):
        raise ValueError(f"SignedHeaders '{text}' is not a ';'-separated list of header names")
    return names


def parse_authorization(value: str) -> V4Signature:
    """Parse "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".

    boto3, the CLI and minio separate the parts with ", "; boto 2 and AWS's own examples
    use a bare ","; both are accepted.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"the algorithm '{algorithm}' is not supported; use {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, content = part.partition("=")
        if not eq:
            raise ValueError(f"'{part}' is not a name=value pair")
        fields[name.strip()] = content.strip()
    absent = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if absent:
        raise ValueError(f"the Authorization header is missing {', '.join(absent)}")
    return V4Signature(
        parse_credential(fields["Credential"]),
        parse_signed_headers(fields["SignedHeaders"]),
        fields["Signature"],
    )


def canonical_request(
    method: str,
    canonical_uri: str,
    canonical_query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    # Exactly the headers the client listed, in its order; a listed header that did not
    # arrive signs as empty, so the signature fails rather than the parse.
    header_block = "".join(f"{name}:{trimall(headers.get(name, ''))}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri,
            canonical_query,
            header_block,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, credential: Credential) -> bytes:
    # Four HMACs that give the same key for a whole day of one client's calls: cached.
    key = _hmac(f"AWS4{secret}".encode("utf-8"), credential.date)
    for part in (credential.region, credential.service, TERMINATOR):
        key = _hmac(key, part)
    return key


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _stream_parts(identity: Identity) -> tuple[bytes, str, str]:
    if identity.signing_key is None or identity.amz_date is None or identity.scope is None:
        raise ValueError(f"a {identity.scheme} identity carries no SigV4 signing key")
    return identity.signing_key, identity.amz_date, identity.scope


def chunk_signature(identity: Identity, previous_signature: str, chunk: bytes) -> str:
    """Signature of one STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk; chain from seed_signature."""
    key, amz_date, scope = _stream_parts(identity)
    text = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            amz_date,
            scope,
            previous_signature,
            EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ]
    )
    return sign(key, text)


def trailer_signature(identity: Identity, previous_signature: str, trailer_bytes: bytes) -> str:
    """Signature of the trailing headers of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.

    trailer_bytes are the trailer lines as the client sent them ("name:value\\n" each).
    """
    key, amz_date, scope = _stream_parts(identity)
    text = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            amz_date,
            scope,
            previous_signature,
            hashlib.sha256(trailer_bytes).hexdigest(),
        ]
    )
    return sign(key, text)


def sign_v4_headers(
    *,
    method: str,
    canonical_uri: str,
    raw_query: str,
    headers: Mapping[str, str],
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    payload_hash: str,
    now: datetime,
) -> dict[str, str]:
    """A small client-side signer for hand-built requests (tests, internal tools).

    `headers` must already hold every header to sign, host included; the answer is the
    headers to add: x-amz-date and Authorization. canonical_uri is the path as it will be
    sent for S3; for other services pass encoding.v4_service_uri(path).
    """
    amz_date = to_amz_date(now)
    lowered = {name.lower(): value for name, value in headers.items()}
    lowered["x-amz-date"] = amz_date
    names = tuple(sorted(lowered))
    credential = Credential(access_key, amz_date[:8], region, service)
    canonical = canonical_request(
        method, canonical_uri, v4_canonical_query(raw_query), lowered, names, payload_hash
    )
    signature = sign(signing_key(secret_key, credential), string_to_sign(amz_date, credential.scope, canonical))
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{credential.scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {"x-amz-date": amz_date, "authorization": authorization}
