"""Writing one blob, or one part of a cluster upload (walrus/s3_multipart.py), to the S3
cluster (walrus/s3_blobs.py): streamed while the client's bytes still arrive, never held
whole, and never completed on the cluster when Walrus's checks refuse the body."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

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


class ClusterBucket(Protocol):
    """What a writer needs of its store (S3BlobStore)."""

    bucket: str
    client: Any
    senders: ThreadPoolExecutor

    def put_blob(self, blob_id: str, body: Any, length: int | None = None) -> str: ...

    def send_part(self, blob_id: str, upload_id: str, number: int, body: Any,
                  length: int | None = None) -> str: ...

    def copy_part(self, blob_id: str, upload_id: str, number: int, source: str, first: int,
                  last: int) -> str: ...

    def delete(self, blob_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class PartOf:
    """Where a writer's body goes when it is a part of a cluster upload, not a blob. `lock`
    is the part's: taken by commit() before the cluster can complete the part, released by
    the caller once the part's row is written (release()), so that of two uploads of one part
    the last on the cluster is also the last row."""

    blob_id: str
    upload_id: str
    number: int
    lock: threading.Lock


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
      multipart upload, a part per PART_SIZE, sent while the next is received.

    As a part of a cluster upload (`part`), the one request is an UploadPart instead of a PUT
    and commit() returns the upload's blob id; a part of unknown length past PART_SIZE is
    written as a blob of its own and copied into the part by the cluster (UploadPartCopy),
    as S3 takes no part of unknown length. `cluster_etag` is the cluster's ETag of what
    commit() stored."""

    def __init__(self, store: ClusterBucket, size: int | None, part: PartOf | None = None) -> None:
        self._store = store
        self._part = part
        self._locked = False
        self.cluster_etag = ""
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
            self._put = store.senders.submit(self._send_whole, self._pipe, self._declared)
        self._pipe.put(chunk)

    def _send_whole(self, body: Any, length: int | None) -> str:
        """The body in one request: the blob's PUT, or the part's UploadPart."""
        part = self._part
        if part is None:
            return self._store.put_blob(self.blob_id, body, length)
        return self._store.send_part(part.blob_id, part.upload_id, part.number, body, length)

    def _stop_pipe(self) -> None:
        if self._pipe is not None and self._put is not None:
            try:
                self._pipe.put(OSError("upload abandoned"))
                self._put.result()
            except Exception:  # the failure asked for, or the request had failed already
                pass
            # The last bytes are held back until commit(), so the cluster cannot have stored
            # the body; deleted all the same, in case a cluster stores a short one (a part
            # broken off leaves the part the cluster had, if any).
            try:
                if self._part is None:
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
                                                number, part, None))

    def commit(self) -> str:
        if self._done:
            raise ValueError("blob writer already finished")
        store = self._store
        try:
            if self._part is not None:
                self._part.lock.acquire()
                self._locked = True
            if self._overflow or (self._declared is not None and self.size != self._declared):
                raise ValueError(f"blob of {self.size} bytes, {self._declared} declared")
            if self._declared is not None:
                if self._buffer:
                    self._feed(bytes(self._buffer))
                assert self._pipe is not None and self._put is not None
                self._pipe.put(None)
                self.cluster_etag = self._put.result()
            elif self._upload_id is None:
                self.cluster_etag = self._send_whole(bytes(self._buffer), None)
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                etags = [f.result() for f in self._parts]
                store.client.complete_multipart_upload(
                    Bucket=store.bucket, Key=self.blob_id, UploadId=self._upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                               for n, e in enumerate(etags, 1)]})
                self._upload_id = None
                if self._part is not None:
                    self._copy_into_part()
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        self._done = True
        return self.blob_id if self._part is None else self._part.blob_id

    def _copy_into_part(self) -> None:
        part, store = self._part, self._store
        assert part is not None
        try:
            self.cluster_etag = store.copy_part(part.blob_id, part.upload_id, part.number,
                                                self.blob_id, 0, self.size - 1)
        finally:
            try:
                store.delete([self.blob_id])
            except ClientError:
                log.exception("deleting blob %s copied into a part (swept at next start)",
                              self.blob_id)

    def release(self) -> None:
        """Let another upload of this part complete it (see PartOf)."""
        if self._locked:
            self._locked = False
            assert self._part is not None
            self._part.lock.release()

    def abort(self) -> None:
        if self._done:
            return
        self.release()
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
