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

One boto3 client serves every thread (botocore clients are thread-safe); its connection pool
is as large as Walrus's worker pool plus the part senders, so no thread waits for a socket."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.config import CloudConfig
from walrus.blobs import BLOB_ID, READ_CHUNK, Segments, plan
from walrus.offload import THREADS

log = logging.getLogger(__name__)

# A blob larger than this goes to the cluster as a multipart upload in parts of about this
# size (S3's smallest part is 5 MiB; RGW stripes objects in 4 MiB pieces).
PART_SIZE = 8 * 1024 * 1024
# Parts of one blob on their way to the cluster at once, besides the one being received.
IN_FLIGHT = 2
# A declared body larger than STREAM_ABOVE is one PUT fed as it arrives, in chunks of
# STREAM_CHUNK, at most PIPE_CHUNKS of them waiting for the cluster; a smaller one is held
# and sent whole (one request without a sender thread or an Expect: 100-continue).
STREAM_ABOVE = 1024 * 1024
STREAM_CHUNK = 256 * 1024
PIPE_CHUNKS = 16
MAX_SINGLE_PUT = 5 * 1024 ** 3
# The object that names the Walrus a bucket belongs to (not a blob id: never swept).
OWNER_KEY = "eucasim-walrus-owner"
# Chunks of a large GET read from the cluster ahead of what the client has taken.
READ_AHEAD = 4
SENDERS = 16
DELETE_BATCH = 1000


@dataclass(frozen=True)
class S3Location:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    @classmethod
    def of(cls, config: CloudConfig) -> S3Location:
        if not config.WALRUS_S3_ENDPOINT:
            raise ValueError("WALRUS_BACKEND=s3 needs WALRUS_S3_ENDPOINT (and its keys)")
        return cls(config.WALRUS_S3_ENDPOINT, config.WALRUS_S3_ACCESS_KEY,
                   config.WALRUS_S3_SECRET_KEY, config.WALRUS_S3_BUCKET, config.WALRUS_S3_REGION)


def backend_client(location: S3Location) -> Any:
    config = Config(
        region_name=location.region, signature_version="s3v4",
        # Walrus checks every body itself (MD5 and the x-amz-checksum-* family): signing the
        # payload again would cost a SHA-256 over every byte, so the cluster gets
        # UNSIGNED-PAYLOAD; and plain bodies, not aws-chunked ones with CRC trailers, which
        # not every S3 cluster takes (Ceph 16 does not).
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=THREADS + SENDERS,
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10, read_timeout=120, tcp_keepalive=True,
        # Walrus builds every call's parameters itself; checking them again costs a 1 KiB GET
        # a good share of its time in botocore.
        parameter_validation=False)
    return boto3.session.Session().client(
        "s3", endpoint_url=location.endpoint, aws_access_key_id=location.access_key,
        aws_secret_access_key=location.secret_key, config=config)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


class _Pipe:
    """The body of a PUT that is being sent while its bytes still arrive: the writer's thread
    puts chunks in, the sender's request reads them out. Bounded, so a slow cluster holds up
    the upload (and so the client) instead of filling memory."""

    def __init__(self, sending: Callable[[], Future[Any] | None]) -> None:
        self._queue: queue.Queue[bytes | None | BaseException] = queue.Queue(PIPE_CHUNKS)
        self._current = memoryview(b"")
        self._sending = sending

    def put(self, item: bytes | None | BaseException) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                future = self._sending()
                if future is not None and future.done():
                    future.result()  # the request ended early: its error is the answer
                    raise OSError("the cluster answered before the body was sent")

    def read(self, amount: int | None = -1) -> bytes:
        while not self._current:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item  # ends the request: the cluster stores nothing
            if item is None:
                return b""
            self._current = memoryview(item)
        count = len(self._current) if amount is None or amount < 0 else amount
        out, self._current = self._current[:count].tobytes(), self._current[count:]
        return out


class S3BlobWriter:
    """One blob on its way to the cluster, in whichever of three ways fits what is known:

    - its size declared and above STREAM_ABOVE: one PUT of that Content-Length, started by
      the first full chunk and fed as the bytes come (no part is assembled, and the tail left
      to send once the client's last byte is in is one chunk, not a part);
    - otherwise ending within PART_SIZE: one PUT of the buffer at commit;
    - its size unknown (aws-chunked without a decoded length) and past PART_SIZE: a cluster
      multipart upload, a part per PART_SIZE, sent while the next is received."""

    def __init__(self, store: S3BlobStore, size: int | None) -> None:
        self._store = store
        self.blob_id = uuid.uuid4().hex
        self.size = 0
        self._declared = (size if size is not None and STREAM_ABOVE < size <= MAX_SINGLE_PUT
                          else None)
        self._buffer = bytearray()
        self._pipe: _Pipe | None = None
        self._put: Future[Any] | None = None
        self._upload_id: str | None = None
        self._parts: list[Future[str]] = []
        self._overflow = False
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise ValueError("blob writer already finished")
        self.size += len(data)
        if self._overflow:
            return
        self._buffer += data
        if self._declared is not None:
            if self.size > self._declared:
                # More than declared: nothing more is sent or kept (the body check refuses
                # the upload before it could be committed).
                self._stop_pipe()
                self._overflow = True
                self._buffer = bytearray()
            elif len(self._buffer) >= STREAM_CHUNK and self.size < self._declared:
                # The last bytes wait for commit(): a cluster that has every byte of the
                # declared length stores the object, even if Walrus's checks then refuse it
                # (and a delete sent then can arrive before the cluster has finished storing).
                self._feed(bytes(self._buffer))
                self._buffer = bytearray()
            return
        if self._pipe is None and len(self._buffer) >= PART_SIZE:
            part, self._buffer = bytes(self._buffer), bytearray()
            self._send_part(part)

    @property
    def held_back(self) -> int:
        """Bytes written but not yet on their way to the cluster."""
        return len(self._buffer)

    def _feed(self, chunk: bytes) -> None:
        store = self._store
        if self._pipe is None:
            self._pipe = _Pipe(lambda: self._put)
            self._put = store.senders.submit(
                store.client.put_object, Bucket=store.bucket, Key=self.blob_id, Body=self._pipe,
                ContentLength=self._declared)
        self._pipe.put(chunk)

    def _stop_pipe(self) -> None:
        if self._pipe is not None and self._put is not None:
            try:
                self._pipe.put(OSError("upload abandoned"))
                self._put.result()
            except Exception:  # the failure asked for, or the request had failed already
                pass
            # The last bytes are held back until commit(), so the cluster cannot have stored
            # the body; deleted all the same, in case a cluster stores a short one.
            try:
                self._store.delete([self.blob_id])
            except ClientError:
                log.exception("deleting abandoned blob %s (swept at next start)", self.blob_id)
        self._pipe = None
        self._put = None

    def _send_part(self, part: bytes) -> None:
        store = self._store
        if self._upload_id is None:
            self._upload_id = store.client.create_multipart_upload(
                Bucket=store.bucket, Key=self.blob_id)["UploadId"]
        # Bounded: wait for the oldest part still on its way before sending another.
        pending = [f for f in self._parts if not f.done()]
        if len(pending) >= IN_FLIGHT:
            pending[0].result()
        number = len(self._parts) + 1
        self._parts.append(store.senders.submit(store.send_part, self.blob_id, self._upload_id,
                                                number, part))

    def commit(self) -> str:
        if self._done:
            raise ValueError("blob writer already finished")
        store = self._store
        try:
            if self._overflow or (self._declared is not None and self.size != self._declared):
                raise ValueError(f"blob of {self.size} bytes, {self._declared} declared")
            if self._declared is not None:
                if self._buffer:
                    self._feed(bytes(self._buffer))
                assert self._pipe is not None and self._put is not None
                self._pipe.put(None)
                self._put.result()
            elif self._upload_id is None:
                store.client.put_object(Bucket=store.bucket, Key=self.blob_id,
                                        Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                etags = [f.result() for f in self._parts]
                store.client.complete_multipart_upload(
                    Bucket=store.bucket, Key=self.blob_id, UploadId=self._upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                               for n, e in enumerate(etags, 1)]})
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        self._done = True
        return self.blob_id

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        self._stop_pipe()
        for part in self._parts:
            try:
                part.result()
            except Exception:  # the upload is being abandoned; its parts' fate is moot
                pass
        if self._upload_id is not None:
            try:
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self.blob_id, UploadId=self._upload_id)
            except ClientError:
                log.exception("aborting cluster upload of blob %s (swept at next start)",
                              self.blob_id)


def _read_ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, read by a thread of its own up to READ_AHEAD chunks ahead: the cluster sends
    the next chunk while the client takes this one, instead of each waiting for the other. A
    thread per large GET, not one from a pool: a slow reader parks it, and must not park the
    threads other requests need. It ends when the reader stops (the iterator is closed)."""
    ahead: queue.Queue[bytes | None | BaseException] = queue.Queue(READ_AHEAD)
    stopped = threading.Event()

    def offer(item: bytes | None | BaseException) -> bool:
        while not stopped.is_set():
            try:
                ahead.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for data in chunks:
                if not offer(data):
                    return
            offer(None)
        except BaseException as error:  # handed to the reader, whose request it fails
            offer(error)
        finally:
            chunks.close()  # type: ignore[attr-defined]

    threading.Thread(target=produce, name="walrus-s3-read", daemon=True).start()
    return _AheadReader(ahead, stopped)


class _AheadReader:
    """The reader's end of `_read_ahead`. A class, not a generator: one dropped before its
    first chunk (a response never sent) still stops its thread when it is collected."""

    def __init__(self, ahead: queue.Queue[bytes | None | BaseException],
                 stopped: threading.Event) -> None:
        self._ahead = ahead
        self._stopped = stopped

    def __iter__(self) -> _AheadReader:
        return self

    def __next__(self) -> bytes:
        if self._stopped.is_set():
            raise StopIteration
        item = self._ahead.get()
        if item is None or isinstance(item, BaseException):
            self.close()
            if item is None:
                raise StopIteration
            raise item
        return item

    def close(self) -> None:
        self._stopped.set()

    def __del__(self) -> None:
        self._stopped.set()


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
            if not _missing(error):
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
            if _missing(error):
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
        return _read_ahead(self._stream(pieces, first, chunk))

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

