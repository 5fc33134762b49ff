"""Cross-origin resource sharing as S3 does it: a bucket's CORSConfiguration (rules of allowed
origins, methods and headers), the answer to a browser's preflight (OPTIONS), and the
Access-Control-* headers of an actual request from an allowed origin.

A rule is stored as {"ID": str|None, "AllowedOrigin": [...], "AllowedMethod": [...],
"AllowedHeader": [...], "ExposeHeader": [...], "MaxAgeSeconds": int|None}."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml

Rule = dict[str, Any]
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
MAX_DOCUMENT = 64 * 1024


def _texts(element: Any, name: str) -> list[str]:
    return [(c.text or "").strip() for c in children(element, name)]


def from_document(body: bytes) -> list[Rule]:
    if len(body) > MAX_DOCUMENT:
        raise S3Error("MalformedXML", "The CORS configuration may be 64 KB at most.")
    root = parse_xml(body, "CORSConfiguration")
    rules: list[Rule] = []
    for element in children(root, "CORSRule"):
        rule: Rule = {"ID": child_text(element, "ID"),
                      "AllowedOrigin": _texts(element, "AllowedOrigin"),
                      "AllowedMethod": _texts(element, "AllowedMethod"),
                      "AllowedHeader": _texts(element, "AllowedHeader"),
                      "ExposeHeader": _texts(element, "ExposeHeader"),
                      "MaxAgeSeconds": None}
        if not rule["AllowedOrigin"] or not rule["AllowedMethod"]:
            raise malformed_xml()
        for method in rule["AllowedMethod"]:
            if method not in METHODS:
                raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. "
                              f"Unsupported method is {method}")
        for origin in rule["AllowedOrigin"]:
            if origin.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedOrigin "{origin}" can not have more '
                              "than one wildcard.")
        for header in rule["AllowedHeader"]:
            if header.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedHeader "{header}" can not have more '
                              "than one wildcard.")
        age = child_text(element, "MaxAgeSeconds")
        if age is not None:
            if not (age.isascii() and age.strip().lstrip("-").isdigit()):
                raise malformed_xml()
            rule["MaxAgeSeconds"] = int(age)
        rules.append(rule)
    if not rules or len(rules) > MAX_RULES:
        raise malformed_xml()
    return rules


def document(rules: list[Rule]) -> dict[str, Any]:
    """GetBucketCors's result (botocore's member names)."""
    return {"CORSRules": [{"ID": r["ID"], "AllowedHeaders": r["AllowedHeader"],
                           "AllowedMethods": r["AllowedMethod"],
                           "AllowedOrigins": r["AllowedOrigin"],
                           "ExposeHeaders": r["ExposeHeader"], "MaxAgeSeconds": r["MaxAgeSeconds"]}
                          for r in rules]}


@lru_cache(maxsize=1024)
def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in wildcard.split("*")) + r"\Z",
                      re.IGNORECASE if ignore_case else 0)


def _matches(patterns: list[str], value: str, ignore_case: bool = False) -> bool:
    return any(_pattern(p, ignore_case).match(value) for p in patterns)


def matching_rule(rules: list[Rule], origin: str, method: str,
                  headers: list[str] = []) -> Rule | None:  # noqa: B006 (never changed)
    """The first rule allowing this origin, method and every requested header, as S3 picks."""
    for rule in rules:
        if (_matches(rule["AllowedOrigin"], origin) and method in rule["AllowedMethod"]
                and all(_matches(rule["AllowedHeader"], h, True) for h in headers)):
            return rule
    return None


def allow_headers(rule: Rule, origin: str, method: str | None = None,
                  requested: list[str] | None = None) -> dict[str, str]:
    """The Access-Control-* headers S3 answers for a rule that matched."""
    wildcard = "*" in rule["AllowedOrigin"]
    headers = {"Access-Control-Allow-Origin": "*" if wildcard else origin,
               "Access-Control-Allow-Methods": ", ".join(rule["AllowedMethod"]),
               "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}
    if not wildcard:
        headers["Access-Control-Allow-Credentials"] = "true"
    if requested:
        headers["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in requested)
    if rule["ExposeHeader"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeader"])
    if rule["MaxAgeSeconds"] is not None:
        headers["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
    return headers


def _forbidden(message: str) -> S3Error:
    return S3Error("AccessForbidden", message, 403)


def preflight(rules: list[Rule] | None, request_headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a successful preflight, or S3's error for a refused one."""
    origin = request_headers.get("origin")
    method = request_headers.get("access-control-request-method")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    if not method:
        raise S3Error("BadRequest", "Invalid Access-Control-Request-Method: null")
    if not rules:
        raise _forbidden("CORSResponse: CORS is not enabled for this bucket.")
    requested = [h.strip() for h in request_headers.get("access-control-request-headers", "")
                 .split(",") if h.strip()]
    rule = matching_rule(rules, origin, method, requested)
    if rule is None:
        raise _forbidden("CORSResponse: This CORS request is not allowed. This is usually "
                         "because the evalution of Origin, request method / "
                         "Access-Control-Request-Method or Access-Control-Request-Headers are not "
                         "whitelisted by the resource's CORS spec.")
    return allow_headers(rule, origin, method, requested)


def actual(rules: list[Rule] | None, origin: str, method: str) -> dict[str, str]:
    """Access-Control-* headers for an actual (not preflight) request; none if no rule allows."""
    if not rules:
        return {}
    rule = matching_rule(rules, origin, method)
    return allow_headers(rule, origin) if rule is not None else {}
