"""A part of a multipart upload that is its cluster's upload (walrus/blobs.py ClusterUploads):
the body streamed into the cluster's part through the same checks as any body
(walrus/bodies.py), and UploadPartCopy done by the cluster where the source lies in one
blob."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from walrus import checksums
from walrus.blobs import BlobStore, ClusterUploads, PartWriter, cluster_uploads, plan
from walrus.bodies import BodySpec, ReceivedBody, receive_body
from walrus.context import S3Context
from walrus.models import Upload
from walrus.versions import Version

T = TypeVar("T")
log = logging.getLogger(__name__)


class PartTarget:
    """Part `number` of one cluster upload, offered to the body receiver as a store whose
    only writer is that part's (the blob it commits is the upload's)."""

    def __init__(self, uploads: ClusterUploads, upload: Upload, number: int) -> None:
        assert upload.blob_id is not None and upload.cluster_upload_id is not None
        self.uploads = uploads
        self.blob_id: str = upload.blob_id
        self.upload_id: str = upload.cluster_upload_id
        self.number = number
        self._writer: PartWriter | None = None
        self._held = False

    def writer(self, size: int | None = None) -> PartWriter:
        self._writer = self.uploads.part_writer(self.blob_id, self.upload_id, self.number, size)
        return self._writer

    def cluster_etag(self) -> str:
        assert self._writer is not None
        return self._writer.cluster_etag

    def release(self) -> None:
        """Once the part's row is written (or not to be): see ClusterUploads.part_lock."""
        if self._writer is not None:
            self._writer.release()
        if self._held:
            self._held = False
            self.uploads.part_lock(self.blob_id, self.number).release()

    def hold(self) -> None:
        self.uploads.part_lock(self.blob_id, self.number).acquire()
        self._held = True

    def delete(self, blob_ids: Any) -> None:
        """Nothing to delete: a part not committed left the cluster's part as it was."""


def target(ctx: S3Context, upload: Upload, number: int) -> PartTarget | None:
    uploads = cluster_uploads(ctx.blobs)
    if upload.blob_id is None or uploads is None:
        return None
    return PartTarget(uploads, upload, number)


async def receive(ctx: S3Context, part: PartTarget, then: Callable[[ReceivedBody], T],
                  compute: list[str]) -> T:
    """ctx.receive, into the cluster's part instead of a new blob."""
    return await receive_body(ctx.request.stream(), BodySpec.from_headers(ctx.headers, compute),
                              cast(BlobStore, part), then, identity=ctx.identity)


def copy(ctx: S3Context, part: PartTarget, source: Version, start: int, end: int,
         compute: list[str]) -> tuple[int, str, dict[str, str], str]:
    """Bytes start..end of `source` as the part: (size, MD5 hex, checksums, cluster ETag).
    The cluster copies when they lie in one blob; Walrus still reads them for the part's MD5
    and checksums unless the source's own are the part's (the whole of a one-part object).
    The part's lock is held on return: the caller releases it once the row is written."""
    pieces = plan(source.segments, start, end)
    if len(pieces) != 1:  # a source whose parts are blobs of their own: streamed
        writer = part.writer(end - start + 1)
        try:
            md5_hex, sums = _digest(ctx.blobs, source, start, end, compute, writer)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return end - start + 1, md5_hex, sums, writer.cluster_etag
    blob_id, first, last, _ = pieces[0]
    whole = start == 0 and end == source.size - 1 and not source.parts_count
    if whole and all(a in source.checksums for a in compute):
        md5_hex, sums = source.etag, {a: source.checksums[a] for a in compute}
    else:
        md5_hex, sums = _digest(ctx.blobs, source, start, end, compute)
    part.hold()
    cluster_etag = part.uploads.copy_part(part.blob_id, part.upload_id, part.number, blob_id,
                                          first, last)
    return end - start + 1, md5_hex, sums, cluster_etag


def _digest(blobs: BlobStore, source: Version, start: int, end: int, compute: list[str],
            writer: PartWriter | None = None) -> tuple[str, dict[str, str]]:
    """The MD5 and checksums of bytes start..end of `source` (written on to `writer`)."""
    md5 = hashlib.md5()
    hashers = {a: checksums.new_hasher(a) for a in compute}
    for data in blobs.iter_range(source.segments, start, end):
        md5.update(data)
        for hasher in hashers.values():
            hasher.update(data)
        if writer is not None:
            writer.write(data)
    return md5.hexdigest(), {a: checksums.b64(h.digest()) for a, h in hashers.items()}


def abort_quietly(uploads: ClusterUploads, upload: Upload) -> None:
    assert upload.blob_id is not None and upload.cluster_upload_id is not None
    try:
        uploads.abort(upload.blob_id, upload.cluster_upload_id)
    except Exception:  # the sweep at start aborts what no row names
        log.exception("aborting cluster upload of %s", upload.blob_id)
