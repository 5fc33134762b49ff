"""GetObjectAttributes: what HEAD tells and more (the parts of a multipart object), only the
attributes asked for in x-amz-object-attributes."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from services.errors import S3Error
from walrus import checksums
from walrus.context import S3Context, answer
from walrus.ops.buckets import load_bucket
from walrus.ops.objects import shown_version
from walrus.ops.reads import load_object

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def _number(ctx: S3Context, header: str, default: int) -> int:
    raw = ctx.headers.get(header, str(default)).strip()
    if not (raw.isascii() and raw.isdigit()):
        raise S3Error("InvalidArgument", f"Invalid value for {header}", ArgumentName=header,
                      ArgumentValue=raw)
    return int(raw)


def get_object_attributes(ctx: S3Context) -> Response:
    wanted = [a.strip() for a in ctx.headers.get("x-amz-object-attributes", "").split(",")
              if a.strip()]
    if not wanted or any(a not in ATTRIBUTES for a in wanted):
        raise S3Error("InvalidArgument", "Invalid attribute name specified.",
                      ArgumentName="x-amz-object-attributes",
                      ArgumentValue=ctx.headers.get("x-amz-object-attributes", ""))
    bucket = load_bucket(ctx)
    obj = load_object(ctx, bucket)
    body: dict[str, Any] = {}
    if "ETag" in wanted:
        body["ETag"] = obj.etag  # unquoted here, unlike everywhere else
    if "Checksum" in wanted and obj.checksums:
        body["Checksum"] = checksums.as_fields(obj.checksums)
    if "ObjectParts" in wanted and obj.parts_count:
        marker = _number(ctx, "x-amz-part-number-marker", 0)
        limit = min(_number(ctx, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
        sizes = [int(segment[1]) for segment in obj.segments]
        shown = list(enumerate(sizes, start=1))[marker:marker + limit]
        truncated = marker + limit < len(sizes)
        body["ObjectParts"] = {
            "TotalPartsCount": obj.parts_count, "PartNumberMarker": marker,
            "NextPartNumberMarker": shown[-1][0] if shown else marker, "MaxParts": limit,
            "IsTruncated": truncated,
            "Parts": [{"PartNumber": n, "Size": size} for n, size in shown]}
    if "StorageClass" in wanted:
        body["StorageClass"] = obj.storage_class
    if "ObjectSize" in wanted:
        body["ObjectSize"] = obj.size
    body.update(LastModified=obj.last_modified, VersionId=shown_version(bucket, obj.version_id))
    return answer("GetObjectAttributes", body)
