"""ListObjects (v1) and ListObjectsV2: prefix, delimiter and CommonPrefixes, markers and
continuation tokens, max-keys, encoding-type=url, in UTF-8 byte order.

The walk asks the database for one page at a time from a cursor, and jumps over a whole
common prefix with one query, so a listing costs what it returns, not the bucket's size."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from services.errors import S3Error
from walrus import catalog
from walrus.context import S3Context, answer, quote_etag
from walrus.models import Object
from walrus.ops.buckets import load_bucket

MAX_KEYS = 1000


@dataclass
class Page:
    entries: list[tuple[str, Object | None]] = field(default_factory=list)  # (key or prefix, row)
    truncated: bool = False
    # where the next page starts: (value, inclusive)
    resume: tuple[str, bool] | None = None


def walk(ctx: S3Context, bucket: str, prefix: str, delimiter: str, start: str | None,
         inclusive: bool, max_keys: int, markers: bool = False) -> Page:
    """One page of keys and common prefixes; with `markers`, keys whose current version is a
    delete marker too (a listing of versions shows them)."""
    page = Page()
    if max_keys == 0:
        return page  # S3 lists nothing and says nothing is left out
    after = None if inclusive else start  # common prefixes at or before a marker are skipped
    cursor: tuple[str | None, bool] = (start, inclusive)
    want = max_keys + 1
    with ctx.db.session() as db:
        while len(page.entries) < want:
            batch = catalog.scan_objects(db, bucket, prefix, cursor[0], cursor[1],
                                         want - len(page.entries), markers)
            if not batch:
                break
            jumped = False
            for obj in batch:
                rest = obj.key[len(prefix):]
                cut = rest.find(delimiter) if delimiter else -1
                if cut >= 0:
                    common = prefix + rest[: cut + len(delimiter)]
                    nxt = catalog.successor(common)
                    if after is None or common > after:
                        page.entries.append((common, None))
                    if nxt is None:
                        return _finish(page, max_keys)
                    cursor = (nxt, True)
                    jumped = True
                    break
                page.entries.append((obj.key, obj))
                cursor = (obj.key, False)
                if len(page.entries) >= want:
                    break
            if not jumped and len(batch) < want - (len(page.entries) - len(batch)):
                break
    return _finish(page, max_keys)


def _finish(page: Page, max_keys: int) -> Page:
    if len(page.entries) > max_keys:
        page.entries = page.entries[:max_keys]
        page.truncated = True
    if page.truncated and page.entries:
        last, row = page.entries[-1]
        if row is None:
            nxt = catalog.successor(last)
            page.resume = (nxt, True) if nxt is not None else None
            page.truncated = page.resume is not None
        else:
            page.resume = (last, False)
    return page


def max_keys_param(ctx: S3Context) -> int:
    raw = ctx.query.get("max-keys", str(MAX_KEYS))
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer "
                      "range", ArgumentName="max-keys", ArgumentValue=raw) from None
    if value < 0:
        raise S3Error("InvalidArgument", "Argument maxKeys must be an integer between 0 and "
                      "2147483647", ArgumentName="maxKeys", ArgumentValue=raw)
    return min(value, MAX_KEYS)


def encoder(ctx: S3Context) -> tuple[Any, str | None]:
    encoding = ctx.query.get("encoding-type")
    if encoding is None:
        return (lambda text: text), None
    if encoding != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request",
                      ArgumentName="encoding-type", ArgumentValue=encoding)
    # boto3 decodes with unquote_plus, so "+" must travel as %2B; quote does that.
    return (lambda text: quote(text, safe="/")), "url"


def _contents(page: Page, enc: Any, with_owner: bool) -> list[dict[str, Any]]:
    items = []
    for key, row in page.entries:
        if row is None:
            continue
        item: dict[str, Any] = {"Key": enc(key), "LastModified": row.last_modified,
                                "ETag": quote_etag(row.etag), "Size": row.size}
        if row.checksums:
            item["ChecksumAlgorithm"] = [a for a in row.checksums]
        item["StorageClass"] = row.storage_class
        if with_owner:
            item["Owner"] = {"ID": row.owner_id, "DisplayName": row.owner_name}
        items.append(item)
    return items


def _prefixes(page: Page, enc: Any) -> list[dict[str, str]]:
    return [{"Prefix": enc(key)} for key, row in page.entries if row is None]


def list_objects(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "READ")
    if ctx.query.get("list-type") == "2":
        return _list_v2(ctx, bucket.name)
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    marker = ctx.query.get("marker", "")
    max_keys = max_keys_param(ctx)
    enc, encoding = encoder(ctx)
    page = walk(ctx, bucket.name, prefix, delimiter, marker or None, False, max_keys)
    body: dict[str, Any] = {
        "Name": bucket.name, "Prefix": enc(prefix), "Marker": enc(marker), "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None, "IsTruncated": page.truncated,
        "EncodingType": encoding,
    }
    if page.truncated and page.entries:
        body["NextMarker"] = enc(page.entries[-1][0])
    body["Contents"] = _contents(page, enc, True)
    body["CommonPrefixes"] = _prefixes(page, enc)
    return answer("ListObjects", body)


def _token(resume: tuple[str, bool]) -> str:
    value, inclusive = resume
    return base64.urlsafe_b64encode((("F" if inclusive else "A") + value).encode()).decode()


def _untoken(token: str) -> tuple[str, bool]:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text or text[0] not in "AF":
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token", ArgumentValue=token)
    return text[1:], text[0] == "F"


def _list_v2(ctx: S3Context, bucket: str) -> Response:
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    token = ctx.query.get("continuation-token")
    start_after = ctx.query.get("start-after", "")
    max_keys = max_keys_param(ctx)
    enc, encoding = encoder(ctx)
    if token:  # an empty token is a listing from the start, as in S3
        start, inclusive = _untoken(token)
    else:
        start, inclusive = start_after, False
    page = walk(ctx, bucket, prefix, delimiter, start or None, inclusive, max_keys)
    body: dict[str, Any] = {
        "Name": bucket, "Prefix": enc(prefix), "MaxKeys": max_keys,
        "Delimiter": enc(delimiter) if delimiter else None, "KeyCount": len(page.entries),
        "IsTruncated": page.truncated, "EncodingType": encoding,
        "ContinuationToken": token, "StartAfter": enc(start_after) if start_after else None,
        "NextContinuationToken": _token(page.resume) if page.truncated and page.resume else None,
    }
    body["Contents"] = _contents(page, enc, ctx.query.get("fetch-owner") == "true")
    body["CommonPrefixes"] = _prefixes(page, enc)
    return answer("ListObjectsV2", body)

