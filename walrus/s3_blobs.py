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

Walrus's multipart uploads and the cluster's: a Walrus part is a blob of its own (itself sent
as a cluster multipart upload when large), and completing a Walrus upload writes a row naming
the chosen parts' blobs in order, as with files. Mapping a Walrus upload onto one cluster
upload instead (part N as the cluster's part N, completion as the cluster's completion) was
weighed and not chosen: the segment design serves GET ?partNumber=N, ranges and part ETags
from the row alone; UploadPartCopy and aws-chunked parts of unknown length need no
special case; a part replaced or left out is deleted by id; and completion stays one database
write that cannot half-fail against the cluster (no cluster-side copy or assembly). The cost
is one cluster object per Walrus part, which S3 clusters hold without trouble.

The cluster's client is walrus/s3_cluster.py's, writing a blob walrus/s3_writer.py's, and a
large GET's read-ahead walrus/read_ahead.py's."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from walrus.blobs import BLOB_ID, READ_CHUNK, Segments, plan
from walrus.read_ahead import read_ahead
from walrus.s3_cluster import SENDERS, S3Location, backend_client, missing
from walrus.s3_writer import PART_SIZE, S3BlobWriter

__all__ = ["OWNER_KEY", "PART_SIZE", "S3BlobStore", "S3Location"]

log = logging.getLogger(__name__)

# The object that names the Walrus a bucket belongs to (not a blob id: never swept).
OWNER_KEY = "eucasim-walrus-owner"
DELETE_BATCH = 1000


class S3BlobStore:
    def __init__(self, location: S3Location, owner_file: Path) -> None:
        self.bucket = location.bucket
        self.client = backend_client(location)
        self.senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="walrus-s3-part")
        self._ensure_bucket()
        self._claim(owner_file)
        # Uploads a crash left unfinished belong to no blob (the file driver's tmp/ files).
        self._abort_unfinished()

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

    def _abort_unfinished(self) -> None:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        for page in pages:
            for upload in page.get("Uploads", []):
                if BLOB_ID.match(upload["Key"]):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])

    def send_part(self, blob_id: str, upload_id: str, number: int, data: bytes) -> str:
        return str(self.client.upload_part(Bucket=self.bucket, Key=blob_id, UploadId=upload_id,
                                           PartNumber=number, Body=data)["ETag"])

    def writer(self, size: int | None = None) -> S3BlobWriter:
        return S3BlobWriter(self, size)

    def delete(self, blob_ids: Sequence[str]) -> None:
        ids = [b for b in blob_ids if BLOB_ID.match(b)]
        if len(ids) == 1:
            self.client.delete_object(Bucket=self.bucket, Key=ids[0])
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
        extra = {} if lo == 0 and hi == size - 1 else {"Range": f"bytes={lo}-{hi}"}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=blob_id, **extra)["Body"]
        except ClientError as error:
            if missing(error):
                raise FileNotFoundError(f"blob {blob_id}") from None
            raise

    def read_small(self, segments: Segments, start: int, end: int) -> bytes:
        out = []
        for blob_id, lo, hi, size in plan(segments, start, end):
            body = self._get(blob_id, lo, hi, size)
            with body:
                out.append(body.read())
        return b"".join(out)

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

