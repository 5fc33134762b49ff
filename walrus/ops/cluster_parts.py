"""A multipart upload that is its cluster's upload (walrus/blobs.py ClusterUploads): a part's
body streamed into the cluster's part through the same checks as any body
(walrus/bodies.py), UploadPartCopy done by the cluster where the source lies in one blob, and
the completion: Walrus's checks on its rows, then the cluster's, then Walrus's rows."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from services.errors import S3Error
from walrus import catalog, checksums
from walrus.blobs import (BlobStore, ClusterUploads, PartMismatch, PartWriter, UploadGone,
                          cluster_uploads, plan)
from walrus.bodies import BodySpec, ReceivedBody, receive_body
from walrus.context import S3Context
from walrus.models import Part, Upload
from walrus.ops.part_checks import chosen_parts, no_upload
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


def segments(chosen: list[Part], layout: list[Part] | None) -> list[list[Any]]:
    """Each part's blob and size; where the parts are one blob the cluster assembled from
    `layout`, each part's offset in it too (and the blob's size, when parts left out of the
    object were assembled into it)."""
    if layout is None:
        return [[p.blob_id, p.size] for p in chosen]
    offsets: dict[int, int] = {}
    total = 0
    for part in layout:
        offsets[part.part_number] = total
        total += part.size
    tail = [total] if len(layout) != len(chosen) else []
    return [[p.blob_id, p.size, offsets[p.part_number], *tail] for p in chosen]


def complete(ctx: S3Context, upload: Upload,
             wanted: list[tuple[int, str]]) -> tuple[list[Part], list[Part]]:
    """Check the parts on Walrus's rows, complete the cluster's upload, then end Walrus's (the
    object's row follows); returns the chosen parts and those the cluster assembled. A crash
    after the cluster's completion leaves an upload row the cluster no longer holds: the sweep
    at start drops it and deletes the blob."""
    uploads = cluster_uploads(ctx.blobs)
    assert uploads is not None and upload.blob_id and upload.cluster_upload_id
    with ctx.db.session() as db:
        if catalog.get_upload(db, upload.upload_id) is None:
            raise no_upload(upload.upload_id)
        stored = list(catalog.parts_of(db, upload.upload_id))
    chosen = chosen_parts(upload, {p.part_number: p for p in stored}, wanted)
    # Ceph's RGW (16) completes only with every part it holds, so when the client leaves
    # parts out and the cluster refuses the chosen ones, it assembles them all and the
    # object's row names the chosen parts' bytes within the blob.
    layouts = [chosen] if len(chosen) == len(stored) else [chosen, stored]
    layout = chosen
    for attempt, layout in enumerate(layouts, 1):
        try:
            uploads.complete(upload.blob_id, upload.cluster_upload_id,
                             [(p.part_number, p.cluster_etag or "") for p in layout])
            break
        except UploadGone:
            # Its row is left (to an abort, lifecycle or the sweep at start): a concurrent
            # completion that the cluster took may be about to write the object's row.
            raise no_upload(upload.upload_id) from None
        except PartMismatch as refused:
            if attempt == len(layouts) and str(refused) == "EntityTooSmall":
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the "
                              "minimum allowed object size: this storage cluster assembles the "
                              "parts left out too, and one of them is under 5 MiB.",
                              UploadId=upload.upload_id) from None
            if attempt == len(layouts):
                raise S3Error("InvalidPart", "One or more of the specified parts could not be "
                              "found. The part may have been uploaded again meanwhile.",
                              UploadId=upload.upload_id) from None
    with ctx.writing() as db:
        if catalog.get_upload(db, upload.upload_id) is None:
            # aborted meanwhile: the abort deletes the blob
            raise no_upload(upload.upload_id)
        catalog.delete_upload(db, upload.upload_id)
    return chosen, layout
