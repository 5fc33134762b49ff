"""The `s3` blob driver (walrus/blobs.py): each blob is one object, named by its blob id, in a
bucket of an existing S3 cluster (Ceph RGW here; MinIO or AWS S3 elsewhere). Walrus talks to
the cluster with its own keys; users never see them, nor the cluster's ETags or checksums:
what they see is computed by Walrus as the body streams past (walrus/bodies.py), exactly as
with files.

Streaming both ways, nothing held whole:

- Writing (S3BlobWriter), a body whose length the request declares and which is larger than
  STREAM_ABOVE is one PUT to the cluster, sent while the client's bytes still arrive; a
  smaller one is buffered and sent in one PUT at commit (a 1 KiB object costs one request); one of
  unknown length (aws-chunked without x-amz-decoded-content-length) becomes a cluster
  multipart upload once past PART_SIZE, each part sent while the next is received. Memory per
  upload stays below a few parts whatever the object's size, and the bytes flow on to the
  cluster while they arrive instead of after. A body that fails Walrus's checks is never
  completed on the cluster (its request is broken off, or its multipart upload aborted).
- Reading, each blob a read needs is one GET, with a Range header when only part of it is
  wanted, and its body is passed on chunk by chunk.

Walrus's multipart uploads are the cluster's (walrus/s3_multipart.py): CreateMultipartUpload
opens one cluster upload on a fresh blob id; UploadPart N streams into the cluster's part N
(a re-upload replaces it there, as in S3); UploadPartCopy is the cluster's UploadPartCopy
when the source range lies in one blob; completion is the cluster's completion, and the
object's row names the one blob it made, once per part with the part's offset, so GET
?partNumber=N and ranges still read from the row alone. Walrus's own checks (part sizes,
ETags, order, checksums) run on its own rows before the cluster is asked; the parts' ETags on
the cluster are recorded too and named at completion, so a cluster part that is not the one
a row describes (a re-upload whose row was never written) fails the completion instead of
assembling the wrong bytes. A part of unknown length (aws-chunked without a decoded length)
larger than PART_SIZE is written as a blob and copied into the part by the cluster.
Two uploads of one part at once end as they do in S3, the last one the part: a part's lock
(ClusterUploads.part_lock) is held from the cluster's completion of the part to its row.
Ceph 16's RGW completes an upload only with every part it holds: when a client leaves parts
out, Walrus asks for the chosen parts and, on RGW's refusal, for all of them, the row naming
the chosen parts' bytes within the blob (the parts left out stay in it as dead bytes; a part
left out under 5 MiB and not last makes RGW refuse, and Walrus answers EntityTooSmall).

Crashes: the cluster's upload is opened before Walrus's row is written, and completed before
the object's row is written; an upload no row names is aborted by the sweep at start
(walrus/orphans.py), and an upload whose row outlived the cluster's (completed there, the
object's row never written) is dropped by it, its blob swept as an orphan. No row ever names
a blob the cluster has not completed. An upload begun before this mapping (no blob id in its
row) goes on with a blob per part, as on files.

The cluster's client is walrus/s3_cluster.py's (botocore: multipart, streamed PUTs, listings)
beside walrus/s3_http.py's signed urllib3 requests for the hot GET, PUT and DELETE of a blob;
writing a blob is walrus/s3_writer.py's, a large GET's read-ahead walrus/read_ahead.py's, the
multipart mapping walrus/s3_multipart.py's."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from walrus.blob_cache import BlobCache
from walrus.blobs import BLOB_ID, READ_CHUNK, Segments, plan
from walrus.offload import THREADS
from walrus.read_ahead import read_ahead
from walrus.s3_cluster import SENDERS, S3Location, backend_client, missing
from walrus.s3_http import ClusterHTTP
from walrus.s3_multipart import S3Uploads
from walrus.s3_writer import PART_SIZE, S3BlobWriter

__all__ = ["OWNER_KEY", "PART_SIZE", "S3BlobStore", "S3Location"]

log = logging.getLogger(__name__)

# The object that names the Walrus a bucket belongs to (not a blob id: never swept).
OWNER_KEY = "eucasim-walrus-owner"
DELETE_BATCH = 1000
# Blobs up to this size are kept in memory once written or read (walrus/blob_cache.py).
CACHE_LARGEST = 64 * 1024


class S3BlobStore:
    def __init__(self, location: S3Location, owner_file: Path,
                 cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.bucket = location.bucket
        # Small blobs as written or last read: their GETs skip the cluster (blob_cache.py).
        self.cache = BlobCache(cache_bytes, CACHE_LARGEST)
        self.client = backend_client(location)
        # GETs, PUTs of held bodies and single deletes: without the client's cost.
        self.http = ClusterHTTP(location, THREADS + SENDERS)
        self.senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="walrus-s3-part")
        self._ensure_bucket()
        self._claim(owner_file)
        # Uploads a crash left unfinished are aborted by the sweep (walrus/orphans.py), which
        # knows which ones Walrus's rows still name.
        self.uploads = S3Uploads(self)

    def _claim(self, owner_file: Path) -> None:
        """Refuse a bucket another Walrus uses. Walrus deletes at start every blob its own rows
        do not name (walrus/orphans.py), so two Walruses on one bucket (two clouds configured
        alike, or a copy started beside the original) would delete each other's objects. The
        bucket names its Walrus in OWNER_KEY; the Walrus keeps the same id in its home, which a
        backup carries to the host it is restored on."""
        mine = owner_file.read_text().strip() if owner_file.is_file() else None
        try:
            theirs: str | None = self.client.get_object(
                Bucket=self.bucket, Key=OWNER_KEY)["Body"].read().decode().strip()
        except ClientError as error:
            if not missing(error):
                raise
            theirs = None
        if theirs is not None and theirs != mine:
            raise RuntimeError(
                f"bucket {self.bucket} holds the objects of another Walrus ({theirs}; this one "
                f"is {mine or 'new'}): give each Walrus a WALRUS_S3_BUCKET of its own")
        if mine is None:
            mine = uuid.uuid4().hex
            owner_file.parent.mkdir(parents=True, exist_ok=True)
            owner_file.write_text(mine + "\n")
        if theirs is None:
            self.client.put_object(Bucket=self.bucket, Key=OWNER_KEY, Body=mine.encode())

    def _ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as again:  # another Walrus made it meanwhile
                if again.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def put_blob(self, blob_id: str, body: Any, length: int | None = None) -> str:
        if isinstance(body, bytes):
            etag = self.http.put(blob_id, body)
            self.cache.put(blob_id, body)
            return etag
        extra = {} if length is None else {"ContentLength": length}
        return str(self.client.put_object(Bucket=self.bucket, Key=blob_id, Body=body,
                                          **extra)["ETag"])

    def send_part(self, blob_id: str, upload_id: str, number: int, body: Any,
                  length: int | None = None) -> str:
        extra = {} if length is None else {"ContentLength": length}
        return str(self.client.upload_part(Bucket=self.bucket, Key=blob_id, UploadId=upload_id,
                                           PartNumber=number, Body=body, **extra)["ETag"])

    def copy_part(self, blob_id: str, upload_id: str, number: int, source: str, first: int,
                  last: int) -> str:
        if not BLOB_ID.match(source):
            raise ValueError(f"not a blob id: {source!r}")
        try:
            answer = self.client.upload_part_copy(
                Bucket=self.bucket, Key=blob_id, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
                CopySourceRange=f"bytes={first}-{last}")
        except ClientError as error:
            if missing(error):
                raise FileNotFoundError(f"blob {source}") from None
            raise
        return str(answer["CopyPartResult"]["ETag"])

    def writer(self, size: int | None = None) -> S3BlobWriter:
        return S3BlobWriter(self, size)

    def delete(self, blob_ids: Sequence[str]) -> None:
        # The parts of an upload on the cluster all name its one blob: each id once.
        ids = list(dict.fromkeys(b for b in blob_ids if BLOB_ID.match(b)))
        self.cache.forget(ids)
        self.uploads.aborting(ids)
        if len(ids) == 1:
            self.http.delete(ids[0])
            return
        for first in range(0, len(ids), DELETE_BATCH):
            batch = ids[first:first + DELETE_BATCH]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": b} for b in batch], "Quiet": True})
            for error in answer.get("Errors", []):
                log.error("cluster kept blob %s: %s (swept at next start)", error.get("Key"),
                          error.get("Message"))

    def _get(self, blob_id: str, lo: int, hi: int, size: int) -> Any:
        if not BLOB_ID.match(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        try:
            if lo == 0 and hi == size - 1:
                return self.http.get(blob_id)
            return self.http.get(blob_id, lo, hi)
        except ClientError as error:
            if missing(error):
                raise FileNotFoundError(f"blob {blob_id}") from None
            raise

    def read_small(self, segments: Segments, start: int, end: int) -> bytes:
        return b"".join(self._read_piece(*piece) for piece in plan(segments, start, end))

    def _read_piece(self, blob_id: str, lo: int, hi: int, size: int) -> bytes:
        if not self.cache.fits(size):
            with self._get(blob_id, lo, hi, size) as body:
                return bytes(body.read())
        whole = self.cache.get(blob_id)
        if whole is None:
            # The whole blob, however little of it is asked: it is small, and kept.
            with self._get(blob_id, 0, size - 1, size) as body:
                whole = bytes(body.read())
            if len(whole) != size:
                raise OSError(f"blob {blob_id} is not the size its record says")
            self.cache.put(blob_id, whole)
        return whole[lo:hi + 1]

    def iter_range(self, segments: Segments, start: int, end: int,
                   chunk: int = READ_CHUNK) -> Iterator[bytes]:
        pieces = plan(segments, start, end)
        first = self._get(*pieces[0]) if pieces else None
        if sum(hi - lo + 1 for _, lo, hi, _ in pieces) <= chunk * 2:
            return self._stream(pieces, first, chunk)
        return read_ahead(self._stream(pieces, first, chunk))

    def _stream(self, pieces: list[tuple[str, int, int, int]], first: Any,
                chunk: int) -> Iterator[bytes]:
        for index, piece in enumerate(pieces):
            body = first if index == 0 else self._get(*piece)
            try:
                remaining = piece[2] - piece[1] + 1
                for data in body.iter_chunks(chunk):
                    remaining -= len(data)
                    yield data
                if remaining != 0:
                    raise OSError(f"blob {piece[0]} is not the size its record says")
            finally:
                body.close()

    def stored_ids(self) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if BLOB_ID.match(item["Key"]):
                    yield item["Key"]

