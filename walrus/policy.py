"""Bucket policies: the JSON document as S3 checks it on PutBucketPolicy, and its evaluation
for one request (principal, action, resource, condition keys).

How a request is decided, as S3 decides it: an explicit Deny in the bucket's policy refuses
it, whoever asks (the bucket owner too); otherwise an Allow in the policy, or the ACLs (and
ownership) as before, let it through. Without a matching statement the policy says nothing."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from services.errors import S3Error
from walrus.access import Principal

# What only the bucket owner does, and may do whatever the policy says.
POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})
ALLOW = "Allow"
DENY = "Deny"
VERSIONS = ("2012-10-17", "2008-10-17")
MAX_POLICY = 20 * 1024
_ARN = "arn:aws:s3:::"
_IAM = re.compile(r"^arn:aws:iam::(\d{12}):(root|user/(.+))$")

# Condition operators: how one request value is compared with one policy value.
_STRING = {"StringEquals": lambda a, b: a == b,
           "StringEqualsIgnoreCase": lambda a, b: a.lower() == b.lower(),
           "StringLike": lambda a, b: _wildcard(b, False).match(a) is not None}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "NotIpAddress": "IpAddress",
            "NumericNotEquals": "NumericEquals", "ArnNotEquals": "ArnEquals",
            "ArnNotLike": "ArnLike"}


def malformed(message: str) -> S3Error:
    return S3Error("MalformedPolicy", message)


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: * any run of characters, ? any one."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _ip_match(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _numeric(compare: Any) -> Any:
    def check(value: str, expected: str) -> bool:
        try:
            return bool(compare(float(value), float(expected)))
        except ValueError:
            return False
    return check


_COMPARE: dict[str, Any] = {
    **_STRING,
    "IpAddress": _ip_match,
    "Bool": lambda a, b: a.lower() == b.lower(),
    "NumericEquals": _numeric(lambda a, b: a == b),
    "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b),
    "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
    "ArnEquals": lambda a, b: a == b,
    "ArnLike": lambda a, b: _wildcard(b, False).match(a) is not None,
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Request:
    """What a statement is matched against."""
    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1024)
def parsed(text: str) -> dict[str, Any]:
    """A stored policy (checked when it was put), decoded once per distinct text."""
    document: dict[str, Any] = json.loads(text)
    return document


def bucket_arn(bucket: str) -> str:
    return _ARN + bucket


def object_arn(bucket: str, key: str) -> str:
    return f"{_ARN}{bucket}/{key}"


# ---- checking a document -------------------------------------------------------------------

def parse(text: str, bucket: str) -> dict[str, Any]:
    """The policy document, checked as S3 checks it; MalformedPolicy when it is not one."""
    if len(text.encode()) > MAX_POLICY:
        raise malformed("Policies cannot exceed 20 KB.")
    try:
        document = json.loads(text)
    except ValueError:
        raise malformed("Policies must be valid JSON and the first byte must be '{'") from None
    except RecursionError:
        # 20 KB of '[' nest deeper than the decoder recurses; no policy is that deep.
        raise malformed("Policies may not nest that deeply.") from None
    if not isinstance(document, dict):
        raise malformed("Policies must be valid JSON and the first byte must be '{'")
    if document.get("Version", VERSIONS[0]) not in VERSIONS:
        raise malformed("The policy must contain a valid version string")
    statements = document.get("Statement")
    if not statements:
        raise malformed("Missing required field Statement")
    for statement in _as_list(statements):
        _check_statement(statement, bucket)
    return document


def _check_statement(statement: Any, bucket: str) -> None:
    if not isinstance(statement, dict):
        raise malformed("Statement is not an object")
    if statement.get("Effect") not in (ALLOW, DENY):
        raise malformed("Invalid effect: " + str(statement.get("Effect")))
    if ("Principal" in statement) == ("NotPrincipal" in statement):
        raise malformed("Missing required field Principal")
    _check_principal(statement.get("Principal", statement.get("NotPrincipal")))
    if ("Action" in statement) == ("NotAction" in statement):
        raise malformed("Missing required field Action")
    for action in _as_list(statement.get("Action", statement.get("NotAction"))):
        if not isinstance(action, str) or not (action == "*" or action.lower().startswith("s3:")):
            raise malformed("Policy has invalid action")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise malformed("Missing required field Resource")
    for resource in _as_list(statement.get("Resource", statement.get("NotResource"))):
        # A bucket's policy speaks of that bucket and its objects only.
        if not isinstance(resource, str) or not (
                resource == "*" or resource == _ARN + bucket
                or resource.startswith(f"{_ARN}{bucket}/")
                or (("*" in resource or "?" in resource)
                    and _wildcard(resource, False).match(_ARN + bucket))):
            raise malformed("Policy has invalid resource")
    conditions = statement.get("Condition", {})
    if not isinstance(conditions, dict):
        raise malformed("Invalid Condition block")
    for operator, tests in conditions.items():
        base = operator.removesuffix("IfExists")
        if base not in _COMPARE and base not in _NEGATED and base != "Null":
            raise malformed(f"Invalid Condition type : {operator}")
        if not isinstance(tests, dict):
            raise malformed(f"Invalid Condition block for {operator}")


def _check_principal(principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal:
        raise malformed("Invalid principal in policy")
    for kind, values in principal.items():
        if kind not in ("AWS", "CanonicalUser"):
            raise malformed("Invalid principal in policy")
        for value in _as_list(values):
            if not isinstance(value, str) or not (value == "*" or re.fullmatch(r"\d{12}", value)
                                                  or _IAM.match(value)
                                                  or (kind == "CanonicalUser" and value)):
                raise malformed("Invalid principal in policy")


# ---- evaluating ----------------------------------------------------------------------------

def decide(document: dict[str, Any] | None, request: Request) -> str | None:
    """Deny if any statement denies the request, else Allow if any allows it, else None."""
    if not document:
        return None
    verdict = None
    for statement in _as_list(document.get("Statement", [])):
        if _applies(statement, request):
            if statement["Effect"] == DENY:
                return DENY
            verdict = ALLOW
    return verdict


def _applies(statement: dict[str, Any], request: Request) -> bool:
    if "Principal" in statement:
        if not _principal_matches(statement["Principal"], request.principal):
            return False
    elif _principal_matches(statement["NotPrincipal"], request.principal):
        return False
    if "Action" in statement:
        if not _any_wildcard(statement["Action"], request.action, True):
            return False
    elif _any_wildcard(statement["NotAction"], request.action, True):
        return False
    if "Resource" in statement:
        if not _any_wildcard(statement["Resource"], request.resource, False):
            return False
    elif _any_wildcard(statement["NotResource"], request.resource, False):
        return False
    return all(_condition(operator, tests, request.context)
               for operator, tests in statement.get("Condition", {}).items())


def _any_wildcard(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(_wildcard(p, ignore_case).match(value) for p in _as_list(patterns))


def _principal_matches(principal: Any, who: Principal) -> bool:
    if principal == "*":
        return True
    for values in principal.values():
        for value in _as_list(values):
            if value == "*":
                return True
            if who.account_id is None:
                continue
            if value == who.account_id:
                return True
            match = _IAM.match(value)
            if match and match.group(1) == who.account_id and (
                    match.group(2) == "root" or match.group(3) == who.user_name):
                return True
    return False


def _condition(operator: str, tests: dict[str, Any], context: Mapping[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    for key, expected in tests.items():
        present = key.lower() in context
        if base == "Null":
            wanted = str(_as_list(expected)[0]).lower() == "true"
            if present == wanted:
                return False
            continue
        if not present:
            # A missing key matches nothing: a negated test (or an ...IfExists one) holds.
            if if_exists or base in _NEGATED:
                continue
            return False
        value = context[key.lower()]
        positive = _NEGATED.get(base, base)
        hit = any(_COMPARE[positive](value, str(e).lower() if positive == "Bool" else str(e))
                  for e in _as_list(expected))
        if hit == (base in _NEGATED):
            return False
    return True


def is_public(document: dict[str, Any] | None) -> bool:
    """GetBucketPolicyStatus: an Allow to everyone, not narrowed by a condition that fixes
    who may ask (a source address, an account...)."""
    if not document:
        return False
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") != ALLOW or "Principal" not in statement:
            continue
        principal = statement["Principal"]
        everyone = principal == "*" or any("*" in _as_list(v) for v in principal.values())
        narrowing = [k for tests in statement.get("Condition", {}).values()
                     for k in tests if k.lower() != "aws:securetransport"]
        if everyone and not narrowing:
            return True
    return False
