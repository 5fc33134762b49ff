"""Walrus's multipart uploads as the cluster's own (walrus/blobs.py ClusterUploads), for the
`s3` driver (walrus/s3_blobs.py): one cluster upload per Walrus upload, on a fresh blob id;
Walrus's part N is the cluster's part N; completion is the cluster's completion, which leaves
one blob the object's row names. Walrus's rows keep every part's size, ETag and checksums
(and the cluster's ETag of it, which completion names, so the cluster refuses a part that is
not the one Walrus recorded)."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from walrus.blobs import BLOB_ID, PartMismatch, UploadGone
from walrus.s3_cluster import missing
from walrus.s3_writer import PartOf, S3BlobWriter

if TYPE_CHECKING:
    from walrus.s3_blobs import S3BlobStore

log = logging.getLogger(__name__)
PART_LOCKS = 64


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def assembled_etag(part_etags: Sequence[str]) -> str | None:
    """The ETag an S3 cluster gives the object these parts assemble (MD5 of the parts' MD5s),
    or None when a part's ETag is not an MD5 (an encrypting cluster's)."""
    try:
        digests = b"".join(bytes.fromhex(e.strip('"')) for e in part_etags)
    except ValueError:
        return None
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


class S3Uploads:
    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        # Blob id -> cluster upload id of the uploads open on the cluster, so that deleting a
        # blob an upload is writing (a bucket deleted, lifecycle's abort of old uploads)
        # aborts the upload. Filled by open_uploads() at start (the sweep) and by begin().
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()
        # A part's lock (walrus/s3_writer.py PartOf), shared by the parts that hash alike.
        self._part_locks = [threading.Lock() for _ in range(PART_LOCKS)]

    def part_lock(self, blob_id: str, number: int) -> threading.Lock:
        return self._part_locks[hash((blob_id, number)) % PART_LOCKS]

    def begin(self) -> tuple[str, str]:
        store = self._store
        blob_id = uuid.uuid4().hex
        upload_id = str(store.client.create_multipart_upload(Bucket=store.bucket,
                                                              Key=blob_id)["UploadId"])
        with self._lock:
            self._open[blob_id] = upload_id
        return blob_id, upload_id

    def part_writer(self, blob_id: str, upload_id: str, number: int,
                    size: int | None) -> S3BlobWriter:
        return S3BlobWriter(self._store, size, PartOf(blob_id, upload_id, number,
                                                      self.part_lock(blob_id, number)))

    def copy_part(self, blob_id: str, upload_id: str, number: int, source: str, first: int,
                  last: int) -> str:
        return self._store.copy_part(blob_id, upload_id, number, source, first, last)

    def complete(self, blob_id: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        store = self._store
        try:
            store.client.complete_multipart_upload(
                Bucket=store.bucket, Key=blob_id, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})
        except ClientError as error:
            code = _code(error)
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise PartMismatch(code) from None
            if code != "NoSuchUpload":
                raise
            # A completion whose answer was lost (the client's retry, or botocore's) finds
            # the upload gone: the blob the cluster assembled says whether it was this one.
            if not self._assembled(blob_id, [e for _, e in parts]):
                self._forget(blob_id)
                raise UploadGone(blob_id) from None
        self._forget(blob_id)

    def _assembled(self, blob_id: str, etags: list[str]) -> bool:
        store = self._store
        try:
            head = store.client.head_object(Bucket=store.bucket, Key=blob_id)
        except ClientError as error:
            if missing(error):
                return False
            raise
        expected = assembled_etag(etags)
        return expected is not None and str(head.get("ETag", "")).strip('"') == expected

    def _abort_on_cluster(self, blob_id: str, upload_id: str) -> None:
        store = self._store
        try:
            store.client.abort_multipart_upload(Bucket=store.bucket, Key=blob_id,
                                                UploadId=upload_id)
        except ClientError as error:
            if _code(error) != "NoSuchUpload":
                raise
        self._forget(blob_id)

    def abort(self, blob_id: str, upload_id: str) -> None:
        self._abort_on_cluster(blob_id, upload_id)
        # A completion that reached the cluster but whose rows were never written.
        self._store.client.delete_object(Bucket=self._store.bucket, Key=blob_id)

    def open_uploads(self) -> Iterator[tuple[str, str]]:
        store = self._store
        pages = store.client.get_paginator("list_multipart_uploads").paginate(Bucket=store.bucket)
        for page in pages:
            for upload in page.get("Uploads", []):
                if BLOB_ID.match(upload["Key"]):
                    with self._lock:
                        self._open.setdefault(upload["Key"], upload["UploadId"])
                    yield upload["Key"], upload["UploadId"]

    def drop_unknown(self, blob_id: str, upload_id: str) -> None:
        """Abort an upload no row names (the sweep at start): a Walrus upload begun by a
        process that died before writing its row, or a blob's own upload cut off by a crash."""
        self._abort_on_cluster(blob_id, upload_id)

    def aborting(self, blob_ids: Sequence[str]) -> None:
        """Abort the uploads writing these blobs (called when the blobs are deleted)."""
        with self._lock:
            found = [(b, self._open[b]) for b in blob_ids if b in self._open]
        for blob_id, upload_id in found:
            try:
                self.drop_unknown(blob_id, upload_id)
            except ClientError:
                log.exception("aborting cluster upload of blob %s (swept at next start)",
                              blob_id)

    def _forget(self, blob_id: str) -> None:
        with self._lock:
            self._open.pop(blob_id, None)
