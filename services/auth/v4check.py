"""The SigV4 check shared by EC2 and S3: read the claim, check its time, recompute, compare.

What differs between the two protocols (canonical URI, payload hash, error names) is passed
in by ec2.py and s3.py.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.auth import sigv4
from services.auth.encoding import query_params
from services.auth.failures import Failures, Mismatch
from services.auth.model import SCHEME_V4_HEADER, SCHEME_V4_QUERY, Identity, RequestView, SecretLookup
from services.auth.timestamps import (
    MAX_PRESIGN_SECONDS,
    MAX_SKEW,
    is_skewed,
    parse_amz_date,
    parse_any,
    to_amz_date,
)

QUERY_SIGNATURE = "X-Amz-Signature"
_QUERY_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    QUERY_SIGNATURE,
)


@dataclass(frozen=True)
class V4Claim:
    """A parsed, time-checked SigV4 claim, waiting for its signature to be recomputed."""

    signed: sigv4.V4Signature
    amz_date: str  # as it enters the string to sign: YYYYMMDDTHHMMSSZ
    scheme: str


def _check_scope_date(signed: sigv4.V4Signature, amz_date: str, failures: Failures, query: bool) -> None:
    if signed.credential.date != amz_date[:8]:
        raise failures.malformed(
            f"the Credential date {signed.credential.date} is not the date of the request "
            f"({amz_date})",
            query=query,
        )


def header_claim(req: RequestView, failures: Failures, now: datetime) -> V4Claim:
    try:
        signed = sigv4.parse_authorization(req.headers.get("authorization", ""))
    except ValueError as err:
        raise failures.malformed(str(err)) from None
    # Every client tested sends x-amz-date; Date is the documented fallback.
    date_text = req.headers.get("x-amz-date") or req.headers.get("date")
    if not date_text:
        raise failures.malformed("the request has neither an x-amz-date nor a Date header")
    moment = parse_any(date_text)
    if moment is None:
        raise failures.malformed(f"'{date_text}' is not a date this server can read")
    amz_date = to_amz_date(moment)
    _check_scope_date(signed, amz_date, failures, query=False)
    if is_skewed(moment, now):
        raise failures.skewed(moment, now)
    return V4Claim(signed, amz_date, SCHEME_V4_HEADER)


def query_claim(req: RequestView, failures: Failures, now: datetime,
                params: dict[str, str] | None = None) -> V4Claim:
    """`params`: the query as query_params gives it, when the caller has it already."""
    if params is None:
        params = query_params(req.raw_query)
    absent = [name for name in _QUERY_REQUIRED if not params.get(name)]
    if absent:
        raise failures.malformed(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            f"X-Amz-Expires parameters (missing: {', '.join(absent)}).",
            query=True,
        )
    if params["X-Amz-Algorithm"] != sigv4.ALGORITHM:
        raise failures.malformed(
            f"X-Amz-Algorithm only supports \"{sigv4.ALGORITHM}\"", query=True
        )
    try:
        signed = sigv4.V4Signature(
            sigv4.parse_credential(params["X-Amz-Credential"]),
            sigv4.parse_signed_headers(params["X-Amz-SignedHeaders"]),
            params[QUERY_SIGNATURE],
        )
    except ValueError as err:
        raise failures.malformed(f"Error parsing the X-Amz-* parameters: {err}", query=True) from None
    moment = parse_amz_date(params["X-Amz-Date"])
    if moment is None:
        raise failures.malformed(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"", query=True
        )
    amz_date = to_amz_date(moment)
    _check_scope_date(signed, amz_date, failures, query=True)
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise failures.malformed("X-Amz-Expires should be a number", query=True) from None
    if expires < 0:
        raise failures.malformed("X-Amz-Expires must be non-negative", query=True)
    if expires > MAX_PRESIGN_SECONDS:
        raise failures.expires_too_long(expires)
    if moment - now > MAX_SKEW:
        # Signed in the future, further than any honest clock drift.
        raise failures.skewed(moment, now)
    expires_at = moment + timedelta(seconds=expires)
    if now > expires_at:
        raise failures.expired(expires_at, now)
    return V4Claim(signed, amz_date, SCHEME_V4_QUERY)


def verify(
    req: RequestView,
    claim: V4Claim,
    *,
    canonical_uri: str,
    canonical_query: str,
    payload_hash: str,
    secrets: SecretLookup,
    failures: Failures,
) -> Identity:
    credential = claim.signed.credential
    secret = secrets(credential.access_key)
    if secret is None:
        raise failures.unknown_key(credential.access_key)
    canonical = sigv4.canonical_request(
        req.method, canonical_uri, canonical_query, req.headers, claim.signed.signed_headers, payload_hash
    )
    text = sigv4.string_to_sign(claim.amz_date, credential.scope, canonical)
    key = sigv4.signing_key(secret, credential)
    expected = sigv4.sign(key, text)
    if not hmac.compare_digest(expected.encode(), claim.signed.signature.encode("utf-8", "replace")):
        raise failures.mismatch(
            Mismatch(credential.access_key, claim.signed.signature, text, canonical)
        )
    return Identity(
        access_key=credential.access_key,
        scheme=claim.scheme,
        region=credential.region,
        service=credential.service,
        amz_date=claim.amz_date,
        signing_key=key,
        seed_signature=claim.signed.signature,
        scope=credential.scope,
        payload_hash=payload_hash,
    )

