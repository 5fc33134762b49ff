"""Where an S3 request points: bucket and key from the path (path style) or from the Host
header (virtual-host style), the decoded query, and S3's naming rules."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_to_bytes

from services.errors import S3Error

MAX_KEY_BYTES = 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Paths under /internal/ are the services' own API, so no bucket may take that name.
RESERVED_BUCKETS = frozenset({"internal"})
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass
class Target:
    bucket: str | None
    key: str | None
    query: dict[str, str] = field(default_factory=dict)
    virtual_host_bucket: str | None = None

    @property
    def resource(self) -> str:
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key is not None else "")


def host_bucket(host: str, base_hosts: Iterable[str]) -> str | None:
    """The bucket named by a virtual host (`photos.localhost:8777` -> `photos`), if any."""
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    for base in base_hosts:
        base = base.lower()
        if name != base and name.endswith("." + base):
            return name[: -len(base) - 1]
    return None


def parse_target(raw_path: bytes, raw_query: bytes, host: str, base_hosts: Iterable[str]) -> Target:
    query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
    vhost = host_bucket(host, base_hosts)
    path = raw_path.decode("latin-1")
    if not path.startswith("/"):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.")
    rest = path[1:]
    if vhost is not None:
        return Target(vhost, _decode_key(rest) if rest else None, query, vhost)
    if not rest:
        return Target(None, None, query)
    name, slash, raw_key = rest.partition("/")
    return Target(_decode(name), _decode_key(raw_key) if slash and raw_key else None, query)


def _decode(text: str) -> str:
    """A %-encoded path segment as UTF-8; InvalidURI for a '%' that starts no escape (no
    client sends one: they write '%25') or bytes that are not UTF-8."""
    if _LONE_PERCENT.search(text):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") from None


def _decode_key(raw: str) -> str:
    key = _decode(raw)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long", MaxSizeAllowed=str(MAX_KEY_BYTES),
                      Size=str(len(key.encode("utf-8"))))
    return key


def validate_bucket_name(name: str) -> None:
    bad = (not _BUCKET.match(name) or name in RESERVED_BUCKETS or ".." in name or ".-" in name or "-." in name
           or name.startswith("xn--") or name.endswith("-s3alias"))
    if not bad:
        try:
            ipaddress.IPv4Address(name)
            bad = True
        except ValueError:
            pass
    if bad:
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", BucketName=name)
