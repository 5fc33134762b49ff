"""Percent-encoding, query splitting and whitespace rules shared by SigV2 and SigV4."""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes

# RFC 3986 unreserved characters are the only ones AWS leaves bare; Python's quote() always
# keeps letters, digits and "-_.~", so safe="" is exactly that set.
_UNRESERVED_ONLY = ""


def aws_quote(value: str | bytes) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (%20, never +)."""
    return quote(value, safe=_UNRESERVED_ONLY)


def split_query(raw_query: str) -> list[tuple[str, str | None]]:
    """The query's pairs exactly as sent, still encoded; value None when there was no "="."""
    pairs: list[tuple[str, str | None]] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        key, eq, value = piece.partition("=")
        pairs.append((key, value if eq else None))
    return pairs


def query_params(raw_query: str) -> dict[str, str]:
    """First value of each query key, %-decoded ("+" stays "+": SigV4 clients send %20)."""
    params: dict[str, str] = {}
    for key, value in split_query(raw_query):
        params.setdefault(unquote(key), unquote(value or ""))
    return params


def form_params(raw: str) -> list[tuple[str, str]]:
    """application/x-www-form-urlencoded pairs ("+" is a space), blank values kept."""
    return parse_qsl(raw, keep_blank_values=True)


def v4_canonical_query(raw_query: str, leave_out: frozenset[str] = frozenset()) -> str:
    """SigV4's canonical query: decode each pair, re-encode it the RFC 3986 way, sort.

    Decoding to bytes rather than text keeps invalid UTF-8 sequences byte-exact. A bare key
    becomes "key=" (minio sends "uploads=", boto3 "uploads"; both sign "uploads=").
    """
    pairs: list[tuple[str, str]] = []
    for key, value in split_query(raw_query):
        name = _canonical(key)
        if leave_out and unquote_to_bytes(key).decode("utf-8", "replace") in leave_out:
            continue
        pairs.append((name, _canonical(value or "")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical(text: str) -> str:
    if len(text) > _REMEMBERED:  # a request's own long values would only fill the memory
        return aws_quote(unquote_to_bytes(text))
    return _canonical_short(text)


# Most of a presigned URL's query is the same from request to request (the algorithm, the
# credential, the expiry, the signed headers): each short name and value re-encoded once.
_REMEMBERED = 256


@functools.lru_cache(maxsize=4096)
def _canonical_short(text: str) -> str:
    return aws_quote(unquote_to_bytes(text))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 plus the collapse of empty segments, as every non-S3 AWS service does."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    head = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and kept else ""
    return head + "/".join(kept) + tail


def v4_service_uri(raw_path: str) -> str:
    """Canonical URI for services other than S3: normalised, then encoded a second time.

    botocore signs quote(path-as-sent), so an already-encoded "%20" becomes "%2520" in the
    canonical request. S3 alone signs the raw path untouched.
    """
    return quote(remove_dot_segments(raw_path or "/"), safe="/~")


def trimall(value: str) -> str:
    """Trim and collapse inner runs of whitespace to one space (SigV4 header values)."""
    return " ".join(value.split())


def spaced_hex(text: str) -> str:
    """"41 57 53" -- how S3 shows StringToSignBytes / CanonicalRequestBytes in its errors."""
    return " ".join(f"{b:02x}" for b in text.encode("utf-8"))
