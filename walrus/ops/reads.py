"""Reading objects: GetObject and HeadObject, with ranges, preconditions, checksums and the
response-* overrides of presigned URLs. Bodies stream from disk in chunks."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from services import s3xml
from services.errors import S3Error
from services.s3xml import http_date
from walrus import access, catalog, checksums, storage_class, versions
from walrus.context import S3Context, no_such_key, no_such_version, quote_etag
from walrus.models import Bucket
from walrus.ops.buckets import load_bucket
from walrus.ops.objects import shown_version
from walrus.versions import Version
from walrus.ops.conditions import NotModified, check_conditions, parse_range
from walrus.streaming import BlobStream

# Bodies up to this size are read at once, in the handler's worker thread: cheaper than a
# streaming response for small objects. Measured with 32 clients, 1 MiB objects went faster
# streamed than read whole (the loop then writes them to the socket as they come).
SMALL_OBJECT = 256 * 1024
# The response-* parameters of a presigned GET, and the member each replaces.
OVERRIDES = {"response-content-type": "ContentType",
             "response-content-language": "ContentLanguage",
             "response-expires": "Expires", "response-cache-control": "CacheControl",
             "response-content-disposition": "ContentDisposition",
             "response-content-encoding": "ContentEncoding"}
# Stored representation headers (walrus/ops/objects.py STORED_HEADERS) and their members.
# Expires is echoed as the text it was given, which need not be a date: it stays a header.
STORED = {"content-encoding": "ContentEncoding", "content-disposition": "ContentDisposition",
          "content-language": "ContentLanguage", "cache-control": "CacheControl"}
META = "x-amz-meta-"


def load_object(ctx: S3Context, bucket: Bucket) -> Version:
    """The version a GET or HEAD asks for (the current one unless ?versionId), readable by
    the caller; a delete marker answers as S3 answers it."""
    version_id = ctx.query.get("versionId")
    obj: Version | None
    if version_id is None:
        obj = catalog.read_object(ctx.db.engine, bucket.name, ctx.key)
    else:
        with ctx.db.session() as db:
            obj = versions.find(db, bucket.name, ctx.key, version_id)
    if obj is None or (obj.delete_marker and version_id is None):
        # Without READ on the bucket a caller may not learn whether a key exists.
        if not ctx.may_list(bucket):
            raise access.denied()
        if version_id is not None:
            raise no_such_version(ctx.key, version_id)
        error = no_such_key(ctx.key)
        if obj is not None:
            error.headers = {"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id}
        raise error
    if obj.delete_marker:
        error = S3Error("MethodNotAllowed", "The specified method is not allowed against this "
                        "resource.", 405, Method=ctx.request.method, ResourceType="DeleteMarker")
        error.headers = {"x-amz-delete-marker": "true", "x-amz-version-id": obj.version_id,
                         "Allow": "DELETE"}
        raise error
    ctx.require(obj.owner_id, obj.acl, "READ")
    return obj


def _result(ctx: S3Context, bucket: Bucket, obj: Version) -> tuple[dict[str, Any], dict[str, str]]:
    """GetObject's (and HeadObject's) members, and the headers echoed as stored (Expires)."""
    result: dict[str, Any] = {
        "ETag": quote_etag(obj.etag), "LastModified": obj.last_modified, "AcceptRanges": "bytes",
        "ContentType": obj.content_type, "VersionId": shown_version(bucket, obj.version_id),
        "TagCount": len(obj.tags) if obj.tags else None,
        # S3 names the class for every class but STANDARD
        "StorageClass": None if obj.storage_class in (None, storage_class.STANDARD)
        else obj.storage_class}
    verbatim: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for name, value in obj.meta.items():
        if name.startswith(META):
            metadata[name[len(META):]] = str(value)
        elif name in STORED:
            result[STORED[name]] = str(value)
        else:
            verbatim[name] = str(value)
    if metadata:
        result["Metadata"] = metadata
    if obj.parts_count and "partNumber" in ctx.query:
        result["PartsCount"] = obj.parts_count
    if ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and obj.checksums:
        result.update(checksums.as_fields(obj.checksums))
        composite = any("-" in v for v in obj.checksums.values())
        result["ChecksumType"] = "COMPOSITE" if composite else "FULL_OBJECT"
    for param, member in OVERRIDES.items():
        if param in ctx.query:
            if ctx.principal.anonymous:
                raise S3Error("InvalidRequest", "Request specific response headers cannot be "
                              "used for anonymous GET requests.")
            if member == "Expires":
                verbatim.pop("expires", None)
                verbatim["Expires"] = ctx.query[param]
            else:
                result[member] = ctx.query[param]
    return result, verbatim


def _read(ctx: S3Context, head: bool) -> Response:
    bucket = load_bucket(ctx)
    obj = load_object(ctx, bucket)
    result, verbatim = _result(ctx, bucket, obj)
    try:
        check_conditions(ctx.headers, obj)
    except NotModified:
        return Response(status_code=304, headers={"ETag": result["ETag"],
                                                  "Last-Modified": http_date(obj.last_modified)})
    span = _part_span(ctx, obj) if "partNumber" in ctx.query else \
        parse_range(ctx.headers.get("range"), obj.size)
    status = 200
    start, end = 0, obj.size - 1
    if span is not None:
        start, end = span
        status = 206
        result["ContentRange"] = f"bytes {start}-{end}/{obj.size}"
        # A part of the object does not have the whole object's checksum.
        for name in [m for m in result if m.startswith("Checksum")]:
            del result[name]
    length = end - start + 1 if obj.size else 0
    result["ContentLength"] = length
    headers = s3xml.render("HeadObject" if head else "GetObject", result).headers
    headers.update(verbatim)
    # Content-Type goes in as a plain header: Starlette would add a charset to text/* types.
    if head:
        return Response(status_code=status, headers=headers)
    if length <= SMALL_OBJECT:
        body = ctx.blobs.read_small(obj.segments, start, end) if length else b""
        return Response(body, status_code=status, headers=headers)
    return BlobStream(ctx.blobs.iter_range(obj.segments, start, end), status_code=status,
                      headers=headers)


def _part_span(ctx: S3Context, obj: Version) -> tuple[int, int] | None:
    """GET/HEAD ?partNumber=N: the bytes of part N of a multipart object (a single-part
    object is its own part 1)."""
    raw = ctx.query["partNumber"]
    if "range" in ctx.headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query "
                      "parameter")
    parts = obj.segments if obj.parts_count else [[None, obj.size]]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= len(parts):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", 416,
                      PartNumberRequested=raw, ActualPartCount=str(len(parts)))
    number = int(raw)
    start = sum(int(part[1]) for part in parts[: number - 1])
    size = int(parts[number - 1][1])
    if obj.parts_count is None and obj.size == 0:
        return None
    return start, start + size - 1


def get_object(ctx: S3Context) -> Response:
    return _read(ctx, head=False)


def head_object(ctx: S3Context) -> Response:
    return _read(ctx, head=True)
