"""Signature Version 2: the EC2 Query string to sign and the S3 REST string to sign."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from services.auth.encoding import aws_quote, split_query

# A hashlib constructor (hashlib.sha1, hashlib.sha256).
Digest = Callable[..., Any]

# Query parameters that are part of the S3 resource being signed. The union of what AWS
# documents and what botocore (HmacV1Auth), boto 2 and s3cmd put in: a parameter one client
# signs and we leave out would fail that client, and these names never carry user data
# that another client would leave unsigned.
S3_SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
        "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
        "partNumber", "policy", "replication", "requestPayment", "restore", "select",
        "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads",
        "versionId", "versioning", "versions", "website",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires",
    }
)  # fmt: skip


def hmac_b64(secret: str, text: str, digest: Digest) -> str:
    mac = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def ec2_string_to_sign(method: str, host: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    """METHOD, host[:port] lower-cased, path, then every parameter but Signature.

    Parameters are sorted by name (stably, so repeated names keep their order) and encoded
    the RFC 3986 way, as botocore's SigV2Auth and boto 2 both do.
    """
    pairs = sorted(((k, v) for k, v in params if k != "Signature"), key=lambda kv: kv[0])
    query = "&".join(f"{aws_quote(k.encode())}={aws_quote(v.encode())}" for k, v in pairs)
    return f"{method.upper()}\n{host.lower()}\n{path or '/'}\n{query}"


def s3_resources(raw_path: str, raw_query: str, virtual_host_bucket: str | None) -> list[str]:
    """The CanonicalizedResource candidates, the botocore/boto 2 form first.

    Each starts with the path as sent, prefixed by "/bucket" for a virtual host (so "/"
    becomes "/bucket/"), then the sub-resources sorted by name after "?". Clients differ:
    - sub-resource values: botocore and boto 2 sign them %-decoded and keep a "=" that was
      sent; s3cmd signs them as sent and drops "=" for an empty value. Values that need no
      encoding (all the upload and version ids we issue) give one and the same string.
    - a path-style bucket ("/b?versioning"): botocore sends "/b" but signs "/b/".
    """
    path = raw_path or "/"
    bases = [f"/{virtual_host_bucket}{path}" if virtual_host_bucket else path]
    if not virtual_host_bucket and path.count("/") == 1 and len(path) > 1:
        bases.append(f"{path}/")
    subresources = sorted(
        ((k, v) for k, v in split_query(raw_query) if k in S3_SUBRESOURCES), key=lambda kv: kv[0]
    )
    if not subresources:
        return bases
    decoded = "&".join(k if v is None else f"{k}={unquote(v)}" for k, v in subresources)
    as_sent = "&".join(f"{k}={v}" if v else k for k, v in subresources)
    suffixes = [decoded] if as_sent == decoded else [decoded, as_sent]
    return [f"{base}?{suffix}" for base in bases for suffix in suffixes]


def s3_string_to_sign(method: str, headers: Mapping[str, str], date_line: str, resource: str) -> str:
    """METHOD, Content-MD5, Content-Type, the date line, x-amz-* headers, resource.

    `headers` has lower-case names (repeats already joined with ","); the date line is the
    Date header, "" when x-amz-date is present, or Expires for query authentication.
    """
    amz = {name: value.strip() for name, value in headers.items() if name.startswith("x-amz-")}
    lines = [
        method.upper(),
        headers.get("content-md5", "").strip(),
        headers.get("content-type", "").strip(),
        date_line,
    ]
    lines += [f"{name}:{amz[name]}" for name in sorted(amz)]
    lines.append(resource)
    return "\n".join(lines)
