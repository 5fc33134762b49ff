"""Bucket versioning: Put/GetBucketVersioning and ListObjectVersions (with prefix, delimiter,
key and version-id markers and paging). Storage of versions is walrus/versions.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from services.errors import S3Error
from services.s3xml import Mixed, child_text, malformed_xml, parse_xml
from walrus import versions
from walrus.context import S3Context, answer, empty, quote_etag
from walrus.models import Bucket, Object
from walrus.offload import off_loop
from walrus.ops.bucket_settings import store_setting
from walrus.ops.buckets import load_bucket, load_bucket_async
from walrus.ops.listing import encoder, max_keys_param, walk
from walrus.versions import Version

STATES = (versions.ENABLED, versions.SUSPENDED)


def get_versioning(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require_owner(bucket.owner_id)
    return answer("GetBucketVersioning", {"Status": bucket.versioning})


async def put_versioning(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    ctx.require_owner(bucket.owner_id)
    root = parse_xml(await ctx.small_body(), "VersioningConfiguration")
    status = child_text(root, "Status")
    if status not in STATES:
        raise malformed_xml()
    if (child_text(root, "MfaDelete") or "Disabled") != "Disabled":
        raise S3Error("NotImplemented", "MFA Delete is not implemented by Walrus.", 501)
    return await off_loop(_set_versioning, ctx, bucket, status)


def _set_versioning(ctx: S3Context, bucket: Bucket, status: str) -> Response:
    store_setting(ctx, bucket, "versioning", status, f"versioning of bucket {bucket.name} is {status}")
    return empty(200)


@dataclass
class _Item:
    """One entry of a versions listing: a version (or delete marker), or a common prefix."""
    key: str
    row: Version | None = None
    latest: bool = False


def _versions_of(ctx: S3Context, bucket: str, current: Version | None, key: str,
                 below: int | None, limit: int) -> Iterator[_Item]:
    """A key's versions, newest first: the current one (if given), then the older ones below
    seq `below`, fetched `limit` at a time."""
    if current is not None:
        yield _Item(key, current, True)
    while True:
        with ctx.db.session() as db:
            batch = versions.older_versions(db, bucket, key, below, limit)
        yield from (_Item(key, row) for row in batch)
        if len(batch) < limit:
            return
        below = batch[-1].seq


def _items(ctx: S3Context, bucket: str, prefix: str, delimiter: str, key_marker: str,
           version_marker: str, want: int) -> Iterator[_Item]:
    """Every entry after the markers, in S3's order: keys (and common prefixes) in key order,
    each key's versions newest first."""
    if key_marker and version_marker:
        with ctx.db.session() as db:
            current = db.get(Object, (bucket, key_marker))
            below = None
            if current is None or current.version_id != version_marker:
                below = versions.seq_of(db, bucket, key_marker, version_marker)
                if below is None:
                    raise S3Error("InvalidArgument", "Invalid version id specified",
                                  ArgumentName="version-id-marker", ArgumentValue=version_marker)
        if current is not None and (not prefix or key_marker.startswith(prefix)):
            yield from _versions_of(ctx, bucket, None, key_marker, below, want)
    start: str | None = key_marker or None
    inclusive = False
    while True:
        page = walk(ctx, bucket, prefix, delimiter, start, inclusive, want, markers=True)
        for key, row in page.entries:
            if row is None:
                yield _Item(key)
            else:
                yield from _versions_of(ctx, bucket, row, key, None, want)
        if not page.truncated or page.resume is None:
            return
        start, inclusive = page.resume


def _owner(row: Version) -> dict[str, str]:
    return {"ID": row.owner_id, "DisplayName": row.owner_name}


def list_object_versions(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "READ")
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    version_marker = ctx.query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key "
                      "marker.", ArgumentName="version-id-marker", ArgumentValue=version_marker)
    max_keys = max_keys_param(ctx)
    enc, encoding = encoder(ctx)
    listed: list[_Item] = []
    truncated = False
    items = _items(ctx, bucket.name, prefix, delimiter, key_marker, version_marker, max_keys + 1)
    for item in items if max_keys else ():
        if len(listed) == max_keys:
            truncated = True
            break
        listed.append(item)
    # Versions and delete markers in one sequence, key by key, newest first, as S3 lists them.
    entries = Mixed()
    for item in listed:
        row = item.row
        if row is None:
            continue
        if row.delete_marker:
            entries.append(("DeleteMarkers", {
                "Owner": _owner(row), "Key": enc(item.key), "VersionId": row.version_id,
                "IsLatest": item.latest, "LastModified": row.last_modified}))
        else:
            entries.append(("Versions", {
                "ETag": quote_etag(row.etag), "Size": row.size, "StorageClass": row.storage_class,
                "Key": enc(item.key), "VersionId": row.version_id, "IsLatest": item.latest,
                "LastModified": row.last_modified, "Owner": _owner(row)}))
    body: dict[str, Any] = {
        "IsTruncated": truncated, "KeyMarker": enc(key_marker),
        "VersionIdMarker": version_marker, "Name": bucket.name, "Prefix": enc(prefix),
        "Delimiter": enc(delimiter) if delimiter else None, "MaxKeys": max_keys,
        "EncodingType": encoding,
    }
    if truncated and listed:
        last = listed[-1]
        body["NextKeyMarker"] = enc(last.key)
        body["NextVersionIdMarker"] = last.row.version_id if last.row is not None else None
    body["Versions"] = entries
    body["CommonPrefixes"] = [{"Prefix": enc(i.key)} for i in listed if i.row is None]
    return answer("ListObjectVersions", body)
