"""verify_s3: who signed an S3 REST request (SigV4 or SigV2, header or presigned query)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from services.auth import v4check
from services.auth.encoding import query_params, v4_canonical_query
from services.auth.failures import Mismatch, S3Failures
from services.auth.model import (
    SCHEME_V2_S3_HEADER,
    SCHEME_V2_S3_QUERY,
    Identity,
    RequestView,
    SecretLookup,
)
from services.auth.sigv2 import hmac_b64, s3_resources, s3_string_to_sign
from services.auth.sigv4 import UNSIGNED_PAYLOAD
from services.auth.timestamps import is_skewed, parse_any, utc_now
from services.errors import AuthError

_FAILURES = S3Failures()
_V4_QUERY_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", v4check.QUERY_SIGNATURE)
_V2_QUERY_MARKERS = ("AWSAccessKeyId", "Signature")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# x-amz-content-sha256 values other than a hex digest; what each means for the body is
# Walrus's business (it decodes aws-chunked and checks chunk signatures or trailers).
PAYLOAD_MARKERS = frozenset(
    {
        UNSIGNED_PAYLOAD,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    }
)


def verify_s3(req: RequestView, secrets: SecretLookup, now: datetime | None = None) -> Identity | None:
    """Check an S3 request's signature; None for an anonymous request (no credentials at all).

    Raises services.errors.AuthError with S3's codes: InvalidAccessKeyId and
    SignatureDoesNotMatch (403, the latter with StringToSign/CanonicalRequest in .extra),
    AccessDenied "Request has expired" (403), RequestTimeTooSkewed (403),
    AuthorizationHeaderMalformed / AuthorizationQueryParametersError (400), and
    InvalidArgument / InvalidRequest (400) for requests no signature scheme fits.
    """
    moment = utc_now(now)
    authorization = req.headers.get("authorization", "")
    params = query_params(req.raw_query)
    v4_query = any(name in params for name in _V4_QUERY_MARKERS)
    v2_query = any(name in params for name in _V2_QUERY_MARKERS)
    if (authorization and (v4_query or v2_query)) or (v4_query and v2_query):
        raise AuthError(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            400,
        )
    if authorization.startswith("AWS4-"):
        return _verify_v4_header(req, secrets, moment)
    if authorization.startswith("AWS "):
        return _verify_v2_header(req, authorization, secrets, moment)
    if authorization:
        raise AuthError("InvalidArgument", "Unsupported Authorization Type", 400)
    if v4_query:
        return _verify_v4_query(req, params, secrets, moment)
    if v2_query:
        return _verify_v2_query(req, params, secrets, moment)
    return None


def _verify_v4_header(req: RequestView, secrets: SecretLookup, now: datetime) -> Identity:
    claim = v4check.header_claim(req, _FAILURES, now)
    # S3 signs the payload hash the client declares; the bytes are checked against it later.
    payload_hash = req.headers.get("x-amz-content-sha256")
    if payload_hash is None:
        raise AuthError(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400
        )
    if payload_hash not in PAYLOAD_MARKERS and not _HEX_SHA256.fullmatch(payload_hash):
        raise AuthError(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or "
            "a valid sha256 value.",
            400,
        )
    return v4check.verify(
        req,
        claim,
        canonical_uri=req.raw_path or "/",  # as sent: no re-encoding, no normalisation
        canonical_query=v4_canonical_query(req.raw_query),
        payload_hash=payload_hash,
        secrets=secrets,
        failures=_FAILURES,
    )


def _verify_v4_query(
    req: RequestView, params: dict[str, str], secrets: SecretLookup, now: datetime
) -> Identity:
    claim = v4check.query_claim(req, _FAILURES, now, params)
    # A presigned URL cannot know its body; a client may still pin one with a query parameter.
    payload_hash = params.get("X-Amz-Content-Sha256") or UNSIGNED_PAYLOAD
    return v4check.verify(
        req,
        claim,
        canonical_uri=req.raw_path or "/",
        canonical_query=v4_canonical_query(req.raw_query, frozenset({v4check.QUERY_SIGNATURE})),
        payload_hash=payload_hash,
        secrets=secrets,
        failures=_FAILURES,
    )


def _verify_v2_header(
    req: RequestView, authorization: str, secrets: SecretLookup, now: datetime
) -> Identity:
    access_key, colon, signature = authorization[4:].strip().rpartition(":")
    if not colon or not access_key or not signature:
        raise _FAILURES.malformed("a Signature Version 2 header reads 'AWS <access key>:<signature>'")
    date_text = req.headers.get("x-amz-date") or req.headers.get("date")
    moment = parse_any(date_text) if date_text else None
    if moment is None:
        raise AuthError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403)
    if is_skewed(moment, now):
        raise _FAILURES.skewed(moment, now)
    # s3cmd sends only x-amz-date; it is then signed among the x-amz-* headers and the Date
    # line stays empty, whatever a Date header says.
    date_line = "" if "x-amz-date" in req.headers else req.headers.get("date", "")
    _check_v2(req, access_key, signature, req.headers, date_line, secrets)
    return Identity(access_key=access_key, scheme=SCHEME_V2_S3_HEADER)


def _verify_v2_query(
    req: RequestView, params: dict[str, str], secrets: SecretLookup, now: datetime
) -> Identity:
    access_key, signature, expires = (params.get(k) for k in ("AWSAccessKeyId", "Signature", "Expires"))
    if not access_key or not signature or not expires or not (expires.isascii() and expires.isdigit()):
        raise AuthError(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters",
            403,
        )
    try:
        expires_at = datetime.fromtimestamp(int(expires), timezone.utc)
    except (OverflowError, OSError, ValueError):
        # Beyond the year 9999: SigV2 sets no limit on a lifetime, so it has not expired.
        expires_at = datetime.max.replace(tzinfo=timezone.utc)
    if now > expires_at:
        raise _FAILURES.expired(expires_at, now)
    # botocore's HmacV1QueryAuth signs Content-Type, Content-MD5 and x-amz-* headers, then
    # moves them into the query string; a header actually sent still counts.
    headers: dict[str, str] = {
        key.lower(): value
        for key, value in params.items()
        if key.lower().startswith("x-amz-") or key.lower() in ("content-type", "content-md5")
    }
    headers.update(req.headers)
    _check_v2(req, access_key, signature, headers, expires, secrets)
    return Identity(access_key=access_key, scheme=SCHEME_V2_S3_QUERY)


def _check_v2(
    req: RequestView,
    access_key: str,
    signature: str,
    headers: Mapping[str, str],
    date_line: str,
    secrets: SecretLookup,
) -> None:
    secret = secrets(access_key)
    if secret is None:
        raise _FAILURES.unknown_key(access_key)
    texts = [
        s3_string_to_sign(req.method, headers, date_line, resource)
        for resource in s3_resources(req.raw_path, req.raw_query, req.virtual_host_bucket)
    ]
    provided = signature.encode("utf-8", "replace")
    for text in texts:
        expected = hmac_b64(secret, text, hashlib.sha1)
        if hmac.compare_digest(expected.encode(), provided):
            return
    raise _FAILURES.mismatch(Mismatch(access_key, signature, texts[0]))

