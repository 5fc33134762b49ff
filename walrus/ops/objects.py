"""Writing and removing objects: PutObject, CopyObject, DeleteObject, DeleteObjects."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from starlette.responses import Response

from services import clock
from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml
from walrus import access, catalog, checksums
from walrus.blobs import BlobStore
from walrus.bodies import ReceivedBody
from walrus.context import S3Context, empty, no_such_bucket, no_such_key, quote_etag, xml_response
from walrus.models import Bucket, Object
from walrus.offload import off_loop
from walrus.ops.buckets import load_bucket, load_bucket_async
from walrus.ops.conditions import check_copy_source_conditions, precondition_failed
from walrus.routing import MAX_KEY_BYTES

STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control",
                  "expires")


def object_meta(headers: dict[str, str]) -> dict[str, Any]:
    """User metadata and the representation headers S3 stores and returns with the object."""
    meta: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("x-amz-meta-"):
            meta[name] = value
        elif name in STORED_HEADERS:
            if name == "content-encoding":
                # aws-chunked describes the upload, not the object.
                value = ",".join(v for v in (p.strip() for p in value.split(","))
                                 if v and v != "aws-chunked")
                if not value:
                    continue
            meta[name] = value
    return meta


def require_write(ctx: S3Context, bucket: Bucket) -> None:
    ctx.require(bucket.owner_id, bucket.acl, "WRITE")


def object_owner(ctx: S3Context, bucket: Bucket) -> tuple[str, str]:
    if ctx.principal.anonymous:
        # public-read-write buckets take anonymous writes; the bucket owner owns them.
        return bucket.owner_id, bucket.owner_name
    return ctx.owner_pair()


def store_object(ctx: S3Context, values: dict[str, Any], if_absent: bool = False) -> None:
    """Make the object of these column values the current one for its key and drop the body
    it replaces. An object that is not stored (an error, or `if_absent` and the key exists)
    takes its new body with it: no other row names those blobs."""
    try:
        old_segments = ctx.commits.apply((values, if_absent))
        if old_segments is None:
            raise precondition_failed("If-None-Match")
    except BaseException:
        ctx.blobs.delete(catalog.segment_blobs(values["segments"]))
        raise
    ctx.blobs.delete(catalog.segment_blobs(old_segments))


async def put_object(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    require_write(ctx, bucket)
    owner_id, owner_name = object_owner(ctx, bucket)
    grants = access.requested(ctx.headers, owner_id, owner_name,
                              (bucket.owner_id, bucket.owner_name))
    meta = object_meta(ctx.headers)
    if_absent = ctx.headers.get("if-none-match", "").strip() == "*"
    content_type = ctx.headers.get("content-type") or "binary/octet-stream"

    def store(body: ReceivedBody) -> Response:
        # Column values, not an ORM object: building one costs more than the write.
        store_object(ctx, {"bucket": bucket.name, "key": ctx.key, "size": body.size,
                           "etag": body.md5_hex, "last_modified": clock.utcnow(),
                           "content_type": content_type, "meta": meta,
                           "checksums": body.checksums, "segments": [[body.blob_id, body.size]],
                           "parts_count": None, "owner_id": owner_id, "owner_name": owner_name,
                           "acl": grants}, if_absent)
        ctx.decided(f"stored {ctx.bucket}/{ctx.key}", size=body.size, etag=body.md5_hex)
        return empty(200, {"ETag": quote_etag(body.md5_hex), **checksums.as_headers(body.checksums)})

    return await ctx.receive(store)


def parse_copy_source(value: str) -> tuple[str, str]:
    source = unquote(value.split("?versionId=", 1)[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source",
                      ArgumentValue=value)
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long")
    return bucket, key


def load_readable_source(ctx: S3Context, header: str = "x-amz-copy-source") -> Object:
    src_bucket, src_key = parse_copy_source(ctx.headers[header])
    with ctx.db.session() as db:
        bucket = catalog.get_bucket(db, src_bucket)
        obj = catalog.get_object(db, src_bucket, src_key) if bucket is not None else None
    if bucket is None:
        raise no_such_bucket(src_bucket)
    if obj is None:
        raise no_such_key(src_key)
    ctx.require(obj.owner_id, obj.acl, "READ")
    check_copy_source_conditions(ctx.headers, obj)
    return obj


def copy_range(blobs: BlobStore, source: Object, start: int, end: int,
               algorithms: list[str]) -> tuple[str, int, str, dict[str, str]]:
    """Copy bytes start..end of `source` into a new blob (blocking: a worker thread's work)."""
    writer = blobs.writer()
    md5 = hashlib.md5()
    hashers = {a: checksums.new_hasher(a) for a in algorithms}
    try:
        for data in blobs.iter_range(source.segments, start, end):
            md5.update(data)
            for hasher in hashers.values():
                hasher.update(data)
            writer.write(data)
        blob_id = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return blob_id, writer.size, md5.hexdigest(), {a: checksums.b64(h.digest())
                                                   for a, h in hashers.items()}


def copy_object(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    require_write(ctx, bucket)
    source = load_readable_source(ctx)
    directive = ctx.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
    if (source.bucket, source.key) == (ctx.bucket, ctx.key) and directive == "COPY":
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to "
                      "copy an object to itself without changing the object's metadata, storage "
                      "class, website redirect location or encryption attributes.")
    owner_id, owner_name = ctx.owner_pair()
    if directive == "REPLACE":
        meta = object_meta(ctx.headers)
        content_type = ctx.headers.get("content-type") or "binary/octet-stream"
    else:
        meta, content_type = dict(source.meta), source.content_type
    grants = access.requested(ctx.headers, owner_id, owner_name,
                              (bucket.owner_id, bucket.owner_name))
    wanted = ctx.headers.get("x-amz-checksum-algorithm")
    algorithms = [a.split("-")[0] for a in source.checksums] + ([wanted.upper()] if wanted else [])
    algorithms = list(dict.fromkeys(algorithms))
    blob_id, size, md5_hex, sums = copy_range(ctx.blobs, source, 0, source.size - 1, algorithms)
    row = Object(bucket=bucket.name, key=ctx.key, size=size, etag=md5_hex,
                 last_modified=clock.utcnow(), content_type=content_type, meta=meta,
                 checksums=sums, segments=[[blob_id, size]], parts_count=None,
                 owner_id=owner_id, owner_name=owner_name, acl=grants)
    store_object(ctx, catalog.object_values(row))
    ctx.decided(f"copied {source.bucket}/{source.key} to {ctx.bucket}/{ctx.key}",
                directive=directive)
    return xml_response("CopyObjectResult", {"LastModified": row.last_modified,
                                             "ETag": quote_etag(md5_hex), **checksums.as_fields(sums)})


def delete_object(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    require_write(ctx, bucket)
    _delete_key(ctx, bucket.name, ctx.key)
    return empty(204)


def _delete_key(ctx: S3Context, bucket: str, key: str) -> None:
    with ctx.writing() as db:
        obj = catalog.get_object(db, bucket, key)
        blobs = catalog.segment_blobs(obj.segments) if obj is not None else []
        if obj is not None:
            db.delete(obj)
    ctx.blobs.delete(blobs)
    if blobs:
        ctx.decided(f"deleted {bucket}/{key}")


async def delete_objects(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    root = parse_xml(await ctx.small_body(), "Delete")
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = [child_text(o, "Key") or "" for o in children(root, "Object")]
    if not keys or len(keys) > 1000:
        raise malformed_xml()
    return await off_loop(_delete_listed, ctx, bucket, keys, quiet)


def _delete_listed(ctx: S3Context, bucket: Bucket, keys: list[str], quiet: bool) -> Response:
    deleted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    allowed = access.allowed(ctx.principal, bucket.owner_id, bucket.acl, "WRITE")
    for key in keys:
        if not allowed:
            errors.append({"Key": key, "Code": "AccessDenied", "Message": "Access Denied"})
            continue
        if len(key.encode()) > MAX_KEY_BYTES:
            errors.append({"Key": key, "Code": "KeyTooLongError", "Message": "Your key is too long"})
            continue
        _delete_key(ctx, bucket.name, key)
        if not quiet:
            deleted.append({"Key": key})
    return xml_response("DeleteResult", {"Deleted": deleted, "Error": errors})
