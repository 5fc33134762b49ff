"""Writing and removing objects: PutObject, CopyObject, DeleteObject, DeleteObjects."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from starlette.responses import Response

from services import clock
from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml
from walrus import access, catalog, checksums, policy, storage_class, tagging, versions
from walrus.blobs import BlobStore
from walrus.bodies import ReceivedBody
from walrus.context import (S3Context, no_such_bucket, no_such_key, no_such_version,
                            answer, quote_etag)
from walrus.models import Bucket, Object
from walrus.offload import off_loop
from walrus.ops.buckets import load_bucket, load_bucket_async
from walrus.ops.conditions import check_copy_source_conditions, etag_matches, precondition_failed
from walrus.routing import MAX_KEY_BYTES

MAX_USER_METADATA = 2048
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control",
                  "expires")


def object_meta(headers: dict[str, str]) -> dict[str, Any]:
    """User metadata and the representation headers S3 stores and returns with the object;
    MetadataTooLarge past S3's 2 KB of user metadata (names after x-amz-meta- and values,
    in UTF-8 bytes)."""
    meta: dict[str, Any] = {}
    user_size = 0
    for name, value in headers.items():
        if name.startswith("x-amz-meta-"):
            meta[name] = value
            user_size += len(name.removeprefix("x-amz-meta-").encode()) + len(value.encode())
        elif name in STORED_HEADERS:
            if name == "content-encoding":
                # aws-chunked describes the upload, not the object.
                value = ",".join(v for v in (p.strip() for p in value.split(","))
                                 if v and v != "aws-chunked")
                if not value:
                    continue
            meta[name] = value
    if user_size > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed "
                      "metadata size.", Size=str(user_size), MaxSizeAllowed=str(MAX_USER_METADATA))
    return meta


def require_write(ctx: S3Context, bucket: Bucket) -> None:
    ctx.require(bucket.owner_id, bucket.acl, "WRITE")


def object_owner(ctx: S3Context, bucket: Bucket) -> tuple[str, str]:
    if ctx.principal.anonymous:
        # public-read-write buckets take anonymous writes; the bucket owner owns them.
        return bucket.owner_id, bucket.owner_name
    return ctx.owner_pair()


def store_object(ctx: S3Context, bucket: Bucket, values: dict[str, Any],
                 if_absent: bool = False, if_match: str | None = None) -> str:
    """Make the object of these column values the current one for its key; returns its version
    id. In an unversioned bucket the body it replaces is dropped; in a versioned one the
    replaced version is kept (walrus/versions.py). An object that is not stored (an error, or
    `if_absent` and the key exists) takes its new body with it: no other row names those blobs."""
    values.update(version_id=versions.NULL, delete_marker=False)

    def matching(current: versions.Object | None) -> None:
        # If-Match on a write: the object must be there, with that ETag (S3's conditional write)
        if current is None or current.delete_marker:
            raise no_such_key(values["key"])
        if not etag_matches(if_match or "", current.etag):
            raise precondition_failed("If-Match")

    try:
        if bucket.versioning is None and if_match is None:
            old_segments = ctx.commits.apply((values, if_absent))
            freed = None if old_segments is None else catalog.segment_blobs(old_segments)
        else:
            with ctx.writing() as db:
                freed = versions.write(db, values, bucket.versioning, if_absent,
                                       matching if if_match is not None else None)
        if freed is None:
            raise precondition_failed("If-None-Match")
    except BaseException:
        ctx.blobs.delete(catalog.segment_blobs(values["segments"]))
        raise
    ctx.blobs.delete(freed)
    return str(values["version_id"])


def version_header(bucket: Bucket, version_id: str) -> dict[str, str]:
    """x-amz-version-id, as S3 sends it: for every version of a bucket that has had versioning
    configured, never for a bucket that has not."""
    if bucket.versioning is None and version_id == versions.NULL:
        return {}
    return {"x-amz-version-id": version_id}


async def put_object(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    require_write(ctx, bucket)
    owner_id, owner_name = object_owner(ctx, bucket)
    grants = access.requested(ctx.headers, owner_id, owner_name,
                              (bucket.owner_id, bucket.owner_name))
    meta = object_meta(ctx.headers)
    if_absent = ctx.headers.get("if-none-match", "").strip() == "*"
    if_match = ctx.headers.get("if-match")
    content_type = ctx.headers.get("content-type") or "binary/octet-stream"
    tags = tagging.from_header(ctx.headers) or []
    stored_class = storage_class.requested(ctx.headers)

    def store(body: ReceivedBody) -> Response:
        # Column values, not an ORM object: building one costs more than the write.
        version_id = store_object(ctx, bucket, {
            "bucket": bucket.name, "key": ctx.key, "size": body.size, "etag": body.md5_hex,
            "last_modified": clock.utcnow(), "content_type": content_type, "meta": meta,
            "checksums": body.checksums, "segments": [[body.blob_id, body.size]],
            "parts_count": None, "owner_id": owner_id, "owner_name": owner_name, "acl": grants,
            "tags": tags, "storage_class": stored_class}, if_absent, if_match)
        ctx.decided(f"stored {ctx.bucket}/{ctx.key}", size=body.size, etag=body.md5_hex,
                    version=version_id)
        return answer("PutObject", {"ETag": quote_etag(body.md5_hex),
                                    **checksums.as_fields(body.checksums),
                                    "VersionId": shown_version(bucket, version_id)})

    return await ctx.receive(store)


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """Bucket, key and version id (None for the current version) of x-amz-copy-source."""
    path, _, query = value.partition("?")
    version_id = None
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or not version:
            raise S3Error("InvalidArgument", "Invalid copy source: only versionId may follow the "
                          "key.", ArgumentName="x-amz-copy-source", ArgumentValue=value)
        version_id = unquote(version)
    source = unquote(path).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source",
                      ArgumentValue=value)
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long")
    return bucket, key, version_id


def load_readable_source(ctx: S3Context, header: str = "x-amz-copy-source") -> versions.Version:
    src_bucket, src_key, version_id = parse_copy_source(ctx.headers[header])
    with ctx.db.session() as db:
        bucket = catalog.get_bucket(db, src_bucket)
        obj: versions.Version | None = None
        if bucket is not None:
            obj = (catalog.get_object(db, src_bucket, src_key) if version_id is None
                   else versions.find(db, src_bucket, src_key, version_id))
    if bucket is None:
        raise no_such_bucket(src_bucket)
    expected = ctx.headers.get("x-amz-source-expected-bucket-owner")
    if expected is not None and expected != bucket.owner_id:
        raise access.denied()
    # Reading the source is a GetObject on it: its bucket's policy decides first.
    decision = ctx.policy_decision(bucket, "s3:GetObjectVersion" if version_id else "s3:GetObject",
                                   policy.object_arn(src_bucket, src_key))
    if decision == policy.DENY:
        raise access.denied()
    if obj is None:
        if version_id is not None:
            raise no_such_version(src_key, version_id)
        raise no_such_key(src_key)
    if obj.delete_marker:
        if version_id is not None:
            raise S3Error("InvalidRequest", "The source of a copy request may not specifically "
                          "refer to a delete marker by version id.")
        raise no_such_key(src_key)
    if decision != policy.ALLOW:
        access.require(ctx.principal, obj.owner_id, obj.acl, "READ")
    check_copy_source_conditions(ctx.headers, obj)
    return obj


def shown_version(bucket: Bucket, version_id: str) -> str | None:
    """The VersionId an answer shows (see version_header), or None."""
    return version_header(bucket, version_id).get("x-amz-version-id")


def source_version(source: versions.Version) -> str | None:
    """The CopySourceVersionId of a copy's answer: none for a null version."""
    return None if source.version_id == versions.NULL else source.version_id


def copy_range(blobs: BlobStore, source: versions.Version, start: int, end: int,
               algorithms: list[str]) -> tuple[str, int, str, dict[str, str]]:
    """Copy bytes start..end of `source` into a new blob (blocking: a worker thread's work)."""
    writer = blobs.writer(end - start + 1)
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
    stored_class = storage_class.requested(ctx.headers)
    # Copying an older version onto its own key is how S3 restores it; a copy onto itself
    # that changes the storage class is how S3 changes a class.
    if ((source.bucket, source.key) == (ctx.bucket, ctx.key) and directive == "COPY"
            and "x-amz-storage-class" not in ctx.headers
            and parse_copy_source(ctx.headers["x-amz-copy-source"])[2] is None):
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
    tag_directive = ctx.headers.get("x-amz-tagging-directive", "COPY").upper()
    if tag_directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown tagging directive.",
                      ArgumentName="x-amz-tagging-directive", ArgumentValue=tag_directive)
    tags = (tagging.from_header(ctx.headers) or [] if tag_directive == "REPLACE"
            else list(source.tags or []))
    wanted = ctx.headers.get("x-amz-checksum-algorithm")
    algorithms = [a.split("-")[0] for a in source.checksums] + ([wanted.upper()] if wanted else [])
    algorithms = list(dict.fromkeys(algorithms))
    blob_id, size, md5_hex, sums = copy_range(ctx.blobs, source, 0, source.size - 1, algorithms)
    row = Object(bucket=bucket.name, key=ctx.key, size=size, etag=md5_hex,
                 last_modified=clock.utcnow(), content_type=content_type, meta=meta,
                 checksums=sums, segments=[[blob_id, size]], parts_count=None,
                 owner_id=owner_id, owner_name=owner_name, acl=grants, tags=tags,
                 storage_class=stored_class)
    version_id = store_object(ctx, bucket, catalog.object_values(row))
    ctx.decided(f"copied {source.bucket}/{source.key} to {ctx.bucket}/{ctx.key}",
                directive=directive, version=version_id)
    return answer("CopyObject", {
        "CopyObjectResult": {"LastModified": row.last_modified, "ETag": quote_etag(md5_hex),
                             **checksums.as_fields(sums)},
        "VersionId": shown_version(bucket, version_id),
        "CopySourceVersionId": source_version(source)})


def delete_object(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    require_write(ctx, bucket)
    done = _delete_key(ctx, bucket, ctx.key, ctx.query.get("versionId"))
    return answer("DeleteObject", {"VersionId": done.version_id,
                                   "DeleteMarker": True if done.delete_marker else None}, 204)


class Deleted:
    """What a DELETE did: the version it removed or the delete marker it made."""

    def __init__(self, version_id: str | None = None, delete_marker: bool = False,
                 marker_made: bool = False) -> None:
        self.version_id = version_id
        self.delete_marker = delete_marker
        self.marker_made = marker_made


def _delete_key(ctx: S3Context, bucket: Bucket, key: str, version_id: str | None) -> Deleted:
    if version_id is not None:
        with ctx.writing() as db:
            removed, blobs = versions.remove(db, bucket.name, key, version_id)
        ctx.blobs.delete(blobs)
        if removed is not None:
            ctx.decided(f"deleted version {version_id} of {bucket.name}/{key}")
        return Deleted(version_id, removed is not None and removed.delete_marker)
    if bucket.versioning is not None:
        owner = object_owner(ctx, bucket)
        with ctx.writing() as db:
            marker_id, blobs = versions.add_delete_marker(db, bucket.name, key, bucket.versioning,
                                                          owner)
        ctx.blobs.delete(blobs)
        ctx.decided(f"put a delete marker on {bucket.name}/{key}", version=marker_id)
        return Deleted(marker_id, True, True)
    with ctx.writing() as db:
        obj = catalog.get_object(db, bucket.name, key)
        blobs = catalog.segment_blobs(obj.segments) if obj is not None else []
        if obj is not None:
            db.delete(obj)
    ctx.blobs.delete(blobs)
    if blobs:
        ctx.decided(f"deleted {bucket.name}/{key}")
    return Deleted()


async def delete_objects(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    root = parse_xml(await ctx.small_body(), "Delete")
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = [(child_text(o, "Key") or "", child_text(o, "VersionId"))
            for o in children(root, "Object")]
    if not keys or len(keys) > 1000:
        raise malformed_xml()
    return await off_loop(_delete_listed, ctx, bucket, keys, quiet)


def _delete_listed(ctx: S3Context, bucket: Bucket, keys: list[tuple[str, str | None]],
                   quiet: bool) -> Response:
    deleted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    acl_allows = access.allowed(ctx.principal, bucket.owner_id, bucket.acl, "WRITE")
    action = "s3:DeleteObject"
    for key, version_id in keys:
        # The bucket policy decides each key on its own (its resource is the key).
        decision = ctx.policy_decision(bucket, action + ("Version" if version_id else ""),
                                       policy.object_arn(bucket.name, key))
        if decision == policy.DENY or (decision is None and not acl_allows):
            errors.append({"Key": key, "VersionId": version_id, "Code": "AccessDenied",
                           "Message": "Access Denied"})
            continue
        if len(key.encode()) > MAX_KEY_BYTES:
            errors.append({"Key": key, "VersionId": version_id, "Code": "KeyTooLongError",
                           "Message": "Your key is too long"})
            continue
        done = _delete_key(ctx, bucket, key, version_id)
        if not quiet:
            item: dict[str, Any] = {"Key": key, "VersionId": version_id}
            if done.marker_made:
                item.update(DeleteMarker=True, DeleteMarkerVersionId=done.version_id)
            elif done.delete_marker:
                item["DeleteMarker"] = True
            deleted.append(item)
    return answer("DeleteObjects", {"Deleted": deleted, "Errors": errors})
