"""verify_ec2: who signed an EC2 Query request (SigV4 header or query, SigV2 parameters)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from services.auth import v4check
from services.auth.encoding import form_params, query_params, v4_canonical_query, v4_service_uri
from services.auth.failures import Ec2Failures, Mismatch
from services.auth.model import SCHEME_V2_QUERY, Identity, RequestView, SecretLookup
from services.auth.sigv2 import ec2_string_to_sign, hmac_b64
from services.auth.timestamps import is_skewed, parse_iso8601, utc_now

_FAILURES = Ec2Failures()
_V4_QUERY_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", v4check.QUERY_SIGNATURE)
_V2_MARKERS = ("Signature", "AWSAccessKeyId", "SignatureVersion")
_V2_DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}
_FORM = "application/x-www-form-urlencoded"


def verify_ec2(req: RequestView, secrets: SecretLookup, now: datetime | None = None) -> Identity:
    """Check an EC2 Query request's signature and return who made it.

    Raises services.errors.AuthError: MissingAuthenticationToken (401) with no credentials,
    IncompleteSignature (400) when they are malformed, AuthFailure (401) for an unknown key
    or a wrong signature, RequestExpired (400) outside the 15-minute window or past a
    presigned or SigV2 Expires time.
    """
    moment = utc_now(now)
    if req.headers.get("authorization"):
        claim = v4check.header_claim(req, _FAILURES, moment)
        return _verify_v4(req, claim, secrets, frozenset())
    query = query_params(req.raw_query)
    if any(name in query for name in _V4_QUERY_MARKERS):
        claim = v4check.query_claim(req, _FAILURES, moment)
        return _verify_v4(req, claim, secrets, frozenset({v4check.QUERY_SIGNATURE}))
    params = _v2_params(req)
    if any(name == marker for name, _ in params for marker in _V2_MARKERS):
        return _verify_v2(req, params, secrets, moment)
    raise _FAILURES.missing()


def _verify_v4(
    req: RequestView, claim: v4check.V4Claim, secrets: SecretLookup, leave_out: frozenset[str]
) -> Identity:
    # No EC2 client sends x-amz-content-sha256: the server hashes the form body itself. If a
    # client does declare a hash, botocore signs the declared value, so we sign it too, but it
    # must then be the body's: an unsigned or mismatched body would let anyone swap the Action.
    actual = hashlib.sha256(req.body).hexdigest()
    declared = req.headers.get("x-amz-content-sha256")
    identity = v4check.verify(
        req,
        claim,
        canonical_uri=v4_service_uri(req.raw_path),
        canonical_query=v4_canonical_query(req.raw_query, leave_out),
        payload_hash=declared or actual,
        secrets=secrets,
        failures=_FAILURES,
    )
    if declared and declared != actual:
        raise _FAILURES.mismatch(Mismatch(identity.access_key, claim.signed.signature, ""))
    return identity


def _v2_params(req: RequestView) -> list[tuple[str, str]]:
    """SigV2 parameters travel in the query string (GET) or the form body (POST), or both."""
    params = form_params(req.raw_query)
    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if req.body and content_type == _FORM:
        params += form_params(req.body.decode("utf-8", "replace"))
    return params


def _verify_v2(
    req: RequestView, params: list[tuple[str, str]], secrets: SecretLookup, now: datetime
) -> Identity:
    first: dict[str, str] = {}
    for name, value in params:
        first.setdefault(name, value)
    required = ("AWSAccessKeyId", "Signature", "SignatureVersion", "SignatureMethod")
    absent = [name for name in required if not first.get(name)]
    if absent:
        raise _FAILURES.malformed(f"Signature Version 2 requires the parameters {', '.join(absent)}")
    if first["SignatureVersion"] != "2":
        raise _FAILURES.malformed(
            f"SignatureVersion {first['SignatureVersion']} is not supported; use 2, or Signature Version 4"
        )
    digest = _V2_DIGESTS.get(first["SignatureMethod"])
    if digest is None:
        raise _FAILURES.malformed(
            f"SignatureMethod {first['SignatureMethod']} is not supported; use HmacSHA256 or HmacSHA1"
        )
    _check_v2_time(first, now)
    access_key = first["AWSAccessKeyId"]
    secret = secrets(access_key)
    if secret is None:
        raise _FAILURES.unknown_key(access_key)
    provided = first["Signature"].encode("utf-8", "replace")
    texts = [ec2_string_to_sign(req.method, host, req.raw_path, params) for host in _v2_hosts(req)]
    for text in texts:
        if hmac.compare_digest(hmac_b64(secret, text, digest).encode(), provided):
            return Identity(access_key=access_key, scheme=SCHEME_V2_QUERY)
    raise _FAILURES.mismatch(Mismatch(access_key, first["Signature"], texts[0]))


def _v2_hosts(req: RequestView) -> list[str]:
    """The Host header as received; then with the server's port if the header had none.

    botocore signs the host it sends. boto 2 signs its connection's host string and sends
    that string cut at ":" (its SigV2 handler has no host_header()): given an endpoint
    "127.0.0.1:8773" it signs the port and sends "Host: 127.0.0.1", so the port is put back.
    """
    host = req.headers.get("host", "")
    hosts = [host]
    has_port = host.rsplit("]", 1)[-1].count(":") > 0
    if host and not has_port and req.server_port not in (None, 80, 443):
        hosts.append(f"{host}:{req.server_port}")
    return hosts


def _check_v2_time(params: dict[str, str], now: datetime) -> None:
    if "Timestamp" in params:
        moment = parse_iso8601(params["Timestamp"])
        if moment is None:
            raise _FAILURES.malformed(f"Timestamp '{params['Timestamp']}' is not an ISO 8601 time")
        if is_skewed(moment, now):
            raise _FAILURES.skewed(moment, now)
    elif "Expires" in params:
        moment = parse_iso8601(params["Expires"])
        if moment is None:
            raise _FAILURES.malformed(f"Expires '{params['Expires']}' is not an ISO 8601 time")
        if now > moment:
            raise _FAILURES.expired(moment, now)
    else:
        raise _FAILURES.malformed("Signature Version 2 requires a Timestamp or an Expires parameter")
