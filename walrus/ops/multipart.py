"""Multipart uploads: create, upload a part (or copy one), complete, abort, list parts and
list uploads. A completed object is its parts' blobs in order: nothing is copied. On a store
whose cluster has multipart uploads of its own (walrus/blobs.py ClusterUploads), a Walrus
upload is one of those (walrus/ops/cluster_parts.py): the cluster holds and assembles the
bytes; every check stays here, on Walrus's own rows."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from starlette.responses import Response

from services import clock
from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml
from walrus import access, catalog, checksums, storage_class, tagging
from walrus.blobs import cluster_uploads
from walrus.bodies import ReceivedBody
from walrus.context import S3Context, answer, empty, quote_etag
from walrus.models import Bucket, Object, Part, Upload
from walrus.offload import off_loop
from walrus.ops import cluster_parts
from walrus.ops.buckets import load_bucket, load_bucket_async
from walrus.ops.part_checks import MIN_PART_SIZE, chosen_parts as _chosen_parts
from walrus.ops.part_checks import no_upload as _no_upload
from walrus.ops.objects import (copy_range, load_readable_source, object_meta,
                                shown_version, source_version, store_object)

_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
MAX_PART_NUMBER = 10000


def _load_upload(ctx: S3Context, bucket: Bucket) -> Upload:
    upload_id = ctx.query.get("uploadId", "")
    with ctx.db.session() as db:
        upload = catalog.get_upload(db, upload_id)
    if upload is None or upload.bucket != bucket.name or upload.key != ctx.key:
        raise _no_upload(upload_id)
    # The initiator or the bucket's owner.
    if not (ctx.policy_allows or access.owns(ctx.principal, upload.owner_id)
            or access.owns(ctx.principal, bucket.owner_id)):
        raise access.denied()
    return upload


def _part_number(ctx: S3Context) -> int:
    raw = ctx.query.get("partNumber", "")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                      "inclusive", ArgumentName="partNumber", ArgumentValue=raw)
    return int(raw)


def create_upload(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "WRITE")
    owner_id, owner_name = ctx.owner_pair()
    algorithm = ctx.headers.get("x-amz-checksum-algorithm")
    if algorithm:
        algorithm = algorithm.upper()
        checksums.new_hasher(algorithm)
    grants = access.requested(ctx.headers, owner_id, owner_name,
                              (bucket.owner_id, bucket.owner_name))
    upload = Upload(upload_id=uuid.uuid4().hex, bucket=bucket.name, key=ctx.key,
                    initiated=clock.utcnow(), owner_id=owner_id, owner_name=owner_name,
                    content_type=ctx.headers.get("content-type") or "binary/octet-stream",
                    meta=object_meta(ctx.headers), acl=grants, checksum_algorithm=algorithm,
                    tags=tagging.from_header(ctx.headers) or [],
                    storage_class=storage_class.requested(ctx.headers))
    uploads = cluster_uploads(ctx.blobs)
    if uploads is not None:
        # Opened before the row is written: one that no row names is the sweep's to abort.
        upload.blob_id, upload.cluster_upload_id = uploads.begin()
    try:
        with ctx.writing() as db:
            db.add(upload)
    except BaseException:
        if uploads is not None:
            cluster_parts.abort_quietly(uploads, upload)
        raise
    ctx.decided(f"began multipart upload {upload.upload_id} of {ctx.bucket}/{ctx.key}")
    return answer("CreateMultipartUpload", {
        "Bucket": bucket.name, "Key": ctx.key, "UploadId": upload.upload_id,
        "ChecksumAlgorithm": algorithm or None})


def _save_part(ctx: S3Context, upload: Upload, number: int, blob_id: str, size: int, etag: str,
               sums: dict[str, str], cluster_etag: str | None = None) -> None:
    if upload.blob_id is not None:
        # The cluster's part N is replaced already; a row not written leaves the old row's
        # cluster ETag, which completion names, and the cluster then refuses it.
        with ctx.writing() as db:
            if catalog.get_upload(db, upload.upload_id) is None:
                raise _no_upload(upload.upload_id)
            old = catalog.get_part(db, upload.upload_id, number)
            if old is not None:
                db.delete(old)
                db.flush()
            db.add(Part(upload_id=upload.upload_id, part_number=number, size=size, etag=etag,
                        blob_id=blob_id, last_modified=clock.utcnow(), checksums=sums,
                        cluster_etag=cluster_etag))
        return
    try:
        with ctx.writing() as db:
            if catalog.get_upload(db, upload.upload_id) is None:
                raise _no_upload(upload.upload_id)
            old = catalog.get_part(db, upload.upload_id, number)
            replaced = old.blob_id if old is not None else None
            if old is not None:
                db.delete(old)
                db.flush()
            db.add(Part(upload_id=upload.upload_id, part_number=number, size=size, etag=etag,
                        blob_id=blob_id, last_modified=clock.utcnow(), checksums=sums))
    except BaseException:
        ctx.blobs.delete([blob_id])
        raise
    if replaced:
        ctx.blobs.delete([replaced])


async def upload_part(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    number = _part_number(ctx)
    upload = await off_loop(_load_upload, ctx, bucket)
    compute = [upload.checksum_algorithm] if upload.checksum_algorithm else []
    target = cluster_parts.target(ctx, upload, number)

    def save(body: ReceivedBody) -> Response:
        try:
            _save_part(ctx, upload, number, body.blob_id, body.size, body.md5_hex,
                       body.checksums, target.cluster_etag() if target is not None else None)
        finally:
            if target is not None:
                target.release()
        return answer("UploadPart", {"ETag": quote_etag(body.md5_hex),
                                     **checksums.as_fields(body.checksums)})

    if target is not None:
        return await cluster_parts.receive(ctx, target, save, compute)
    return await ctx.receive(save, compute)


def upload_part_copy(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    number = _part_number(ctx)
    upload = _load_upload(ctx, bucket)
    source = load_readable_source(ctx)
    start, end = 0, source.size - 1
    raw_range = ctx.headers.get("x-amz-copy-source-range")
    if raw_range is not None:
        start, end = _copy_range(raw_range, source.size)
    compute = [upload.checksum_algorithm] if upload.checksum_algorithm else []
    target = cluster_parts.target(ctx, upload, number)
    if target is not None:
        try:
            size, md5_hex, sums, cluster_etag = cluster_parts.copy(ctx, target, source, start,
                                                                   end, compute)
            _save_part(ctx, upload, number, target.blob_id, size, md5_hex, sums, cluster_etag)
        finally:
            target.release()
    else:
        blob_id, size, md5_hex, sums = copy_range(ctx.blobs, source, start, end, compute)
        _save_part(ctx, upload, number, blob_id, size, md5_hex, sums)
    return answer("UploadPartCopy", {
        "CopyPartResult": {"LastModified": clock.utcnow(), "ETag": quote_etag(md5_hex),
                           **checksums.as_fields(sums)},
        "CopySourceVersionId": source_version(source)})


def _copy_range(value: str, size: int) -> tuple[int, int]:
    """x-amz-copy-source-range: exactly bytes=first-last, within the source (unlike Range on
    GET, nothing is guessed or clipped)."""
    match = _COPY_RANGE.fullmatch(value.strip())
    if match is None or int(match.group(1)) > int(match.group(2)):
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                      "bytes=first-last where first and last are the zero-based offsets of the "
                      "first and last bytes to copy", ArgumentName="x-amz-copy-source-range",
                      ArgumentValue=value)
    first, last = int(match.group(1)), int(match.group(2))
    if last >= size:
        raise S3Error("InvalidArgument", "Range specified is not valid for source object of "
                      f"size: {size}", ArgumentName="x-amz-copy-source-range",
                      ArgumentValue=value)
    return first, last


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    root = parse_xml(body, "CompleteMultipartUpload")
    wanted = []
    for part in children(root, "Part"):
        number = (child_text(part, "PartNumber") or "").strip()
        if not (number.isascii() and number.isdigit()):
            raise malformed_xml()
        wanted.append((int(number), (child_text(part, "ETag") or "").strip().strip('"')))
    if not wanted:
        raise malformed_xml()
    return wanted


async def complete_upload(ctx: S3Context) -> Response:
    bucket = await load_bucket_async(ctx)
    upload = await off_loop(_load_upload, ctx, bucket)
    wanted = _requested_parts(await ctx.small_body())
    return await off_loop(_complete, ctx, bucket, upload, wanted)


def _complete(ctx: S3Context, bucket: Bucket, upload: Upload,
              wanted: list[tuple[int, str]]) -> Response:
    numbers = [n for n, _ in wanted]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts "
                      "must be ordered by part number.", UploadId=upload.upload_id)
    layout: list[Part] | None = None
    stored: dict[int, Part] = {}
    if upload.blob_id is not None:
        chosen, layout = cluster_parts.complete(ctx, upload, wanted)
    else:
        # The parts are read, checked and the upload ended in one write: an UploadPart that
        # replaces a part (and deletes the replaced part's blob) comes wholly before, and the
        # completion sees its new ETag, or wholly after, and finds no upload.
        with ctx.writing() as db:
            if catalog.get_upload(db, upload.upload_id) is None:
                raise _no_upload(upload.upload_id)
            stored = {p.part_number: p for p in catalog.parts_of(db, upload.upload_id)}
            chosen = _chosen_parts(upload, stored, wanted)
            catalog.delete_upload(db, upload.upload_id)
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen)).hexdigest()
    etag = f"{digest}-{len(chosen)}"
    sums: dict[str, str] = {}
    algorithm = upload.checksum_algorithm
    if algorithm and all(algorithm in p.checksums for p in chosen):
        sums[algorithm] = checksums.composite([p.checksums[algorithm] for p in chosen], algorithm)
    row = Object(bucket=bucket.name, key=upload.key, size=sum(p.size for p in chosen), etag=etag,
                 last_modified=clock.utcnow(), content_type=upload.content_type,
                 meta=upload.meta, checksums=sums,
                 segments=cluster_parts.segments(chosen, layout), parts_count=len(chosen),
                 owner_id=upload.owner_id, owner_name=upload.owner_name, acl=upload.acl,
                 tags=upload.tags or [], storage_class=upload.storage_class)
    used = {p.blob_id for p in chosen}
    unused = [p.blob_id for p in stored.values() if p.blob_id not in used]
    version_id = store_object(ctx, bucket, catalog.object_values(row))
    ctx.blobs.delete(unused)
    ctx.decided(f"completed {ctx.bucket}/{ctx.key} from {len(chosen)} parts", etag=etag)
    result: dict[str, Any] = {"Location": f"{ctx.request.base_url}{bucket.name}/{upload.key}",
                              "Bucket": bucket.name, "Key": upload.key, "ETag": quote_etag(etag),
                              **checksums.as_fields(sums),
                              "VersionId": shown_version(bucket, version_id)}
    return answer("CompleteMultipartUpload", result)


def abort_upload(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    upload = _load_upload(ctx, bucket)
    with ctx.writing() as db:
        blobs = [p.blob_id for p in catalog.parts_of(db, upload.upload_id)]
        catalog.delete_upload(db, upload.upload_id)
    uploads = cluster_uploads(ctx.blobs)
    if upload.blob_id is not None and uploads is not None:
        assert upload.cluster_upload_id is not None
        uploads.abort(upload.blob_id, upload.cluster_upload_id)
    else:
        ctx.blobs.delete(blobs)
    ctx.decided(f"aborted multipart upload {upload.upload_id}")
    return empty(204)


def _int_param(ctx: S3Context, name: str, default: int, top: int) -> int:
    raw = ctx.query.get(name, str(default))
    if not (raw.isascii() and raw.isdigit()):
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range",
                      ArgumentName=name, ArgumentValue=raw)
    return min(int(raw), top)


def list_parts(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    upload = _load_upload(ctx, bucket)
    marker = _int_param(ctx, "part-number-marker", 0, MAX_PART_NUMBER)
    max_parts = _int_param(ctx, "max-parts", 1000, 1000)
    with ctx.db.session() as db:
        parts = list(catalog.parts_of(db, upload.upload_id, marker, max_parts + 1))
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    items = [{"PartNumber": p.part_number, "LastModified": p.last_modified,
              "ETag": quote_etag(p.etag), "Size": p.size, **checksums.as_fields(p.checksums)}
             for p in parts]
    person = {"ID": upload.owner_id, "DisplayName": upload.owner_name}
    return answer("ListParts", {
        "Bucket": bucket.name, "Key": upload.key, "UploadId": upload.upload_id,
        "Initiator": person, "Owner": person, "StorageClass": upload.storage_class,
        "PartNumberMarker": marker,
        "NextPartNumberMarker": parts[-1].part_number if parts else None,
        "MaxParts": max_parts, "IsTruncated": truncated,
        "ChecksumAlgorithm": upload.checksum_algorithm, "Parts": items})


def list_uploads(ctx: S3Context) -> Response:
    bucket = load_bucket(ctx)
    ctx.require(bucket.owner_id, bucket.acl, "READ")
    prefix, delimiter = ctx.query.get("prefix", ""), ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    id_marker = ctx.query.get("upload-id-marker", "")
    max_uploads = _int_param(ctx, "max-uploads", 1000, 1000)
    with ctx.db.session() as db:
        found = list(catalog.uploads_of(db, bucket.name, prefix, key_marker, id_marker,
                                        max_uploads + 1))
    truncated = len(found) > max_uploads
    found = found[:max_uploads]
    uploads, prefixes = [], []
    for u in found:
        rest = u.key[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
            continue
        person = {"ID": u.owner_id, "DisplayName": u.owner_name}
        uploads.append({"Key": u.key, "UploadId": u.upload_id, "Initiator": person,
                        "Owner": person, "StorageClass": u.storage_class, "Initiated": u.initiated,
                        "ChecksumAlgorithm": u.checksum_algorithm})
    return answer("ListMultipartUploads", {
        "Bucket": bucket.name, "KeyMarker": key_marker, "UploadIdMarker": id_marker,
        "NextKeyMarker": found[-1].key if truncated else None,
        "NextUploadIdMarker": found[-1].upload_id if truncated else None,
        "Prefix": prefix, "Delimiter": delimiter or None, "MaxUploads": max_uploads,
        "IsTruncated": truncated, "Uploads": uploads,
        "CommonPrefixes": [{"Prefix": p} for p in prefixes]})
