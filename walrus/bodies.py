"""Receiving an upload body: decoding aws-chunked framing, checking every integrity claim the
request makes (payload SHA-256, Content-MD5, x-amz-checksum-* headers or trailers, chunk
signatures, declared lengths) while streaming the bytes into a new blob. The blob is committed
only when every check passed, so a bad upload stores nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from starlette.requests import ClientDisconnect

from services.auth import Identity, chunk_signature, trailer_signature
from services.errors import S3Error
from walrus import checksums
from walrus.blobs import BlobStore, BlobWriter
from walrus.chunked import ChunkedDecoder
from walrus.offload import off_loop

T = TypeVar("T")
MAX_PUT_SIZE = 5 * 1024 ** 3
UNSIGNED = "UNSIGNED-PAYLOAD"
SIGNED_STREAMING = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
UNSIGNED_STREAMING = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@dataclass
class ReceivedBody:
    blob_id: str
    size: int
    md5_hex: str
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64


@dataclass
class BodySpec:
    """What the request claims about its body, read from its headers."""

    content_sha256: str | None
    chunked: bool
    decoded_length: int | None
    content_length: int | None
    content_md5: bytes | None
    expected: dict[str, str]  # algorithm -> base64 value from a header
    trailer_algorithms: list[str]
    compute: list[str]

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], compute: list[str] | None = None) -> BodySpec:
        sha = headers.get("x-amz-content-sha256")
        encoding = headers.get("content-encoding", "")
        chunked = "aws-chunked" in encoding.lower() or (sha or "").startswith("STREAMING-")
        md5 = headers.get("content-md5")
        expected: dict[str, str] = {}
        for name, value in headers.items():
            algorithm = checksums.algorithm_of_header(name)
            if algorithm:
                checksums.new_hasher(algorithm)  # refuse unknown algorithms early
                expected[algorithm] = value.strip()
        trailers = []
        for name in (headers.get("x-amz-trailer") or "").split(","):
            algorithm = checksums.algorithm_of_header(name.strip())
            if algorithm:
                checksums.new_hasher(algorithm)
                trailers.append(algorithm)
        wanted = list(compute or [])
        sdk = headers.get("x-amz-sdk-checksum-algorithm")
        if sdk:
            wanted.append(sdk.upper())
        return cls(
            content_sha256=sha,
            chunked=chunked,
            decoded_length=_int(headers.get("x-amz-decoded-content-length")),
            content_length=_int(headers.get("content-length")),
            content_md5=checksums.parse_content_md5(md5) if md5 is not None else None,
            expected=expected,
            trailer_algorithms=trailers,
            compute=wanted,
        )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    # Digits only: int() would also take '+5', '1_0' and other scripts' digits.
    if not (value.isascii() and value.strip().isdigit()):
        raise S3Error("InvalidArgument", f"Not a number: {value[:30]!r}")
    return int(value)


MAX_SMALL_BODY = 2 * 1024 * 1024


class _MemorySink:
    """Collects a small request document; refuses anything larger than a document can be."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_SMALL_BODY:
            raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        self._parts.append(bytes(data))

    def value(self) -> bytes:
        return b"".join(self._parts)


def _too_large() -> S3Error:
    return S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")


# Raw bytes gathered on the event loop before a worker thread decodes, hashes and writes them:
# large enough that a thread hop costs little beside the work, small enough to bound memory.
BATCH = 1024 * 1024


async def receive_body(stream: AsyncIterator[bytes], spec: BodySpec, blobs: BlobStore,
                       then: Callable[[ReceivedBody], T], *, identity: Identity | None = None,
                       max_size: int = MAX_PUT_SIZE) -> T:
    """Stream the body into a new committed blob and return `then(body)`, or raise the S3
    error and store nothing. `identity` is the request's verified signer: signed aws-chunked
    bodies are checked with it. `then` runs in the worker thread that commits the blob (one
    thread hop for the end of the body and what the operation does with it); if it fails,
    deleting the committed blob is its own business.

    The event loop only moves bytes from the socket into memory; decoding, hashing, writing
    and the final fsync run in worker threads, a batch at a time and in order."""
    if max_size and (spec.decoded_length or 0) > max_size:
        raise _too_large()
    if max_size and not spec.chunked and (spec.content_length or 0) > max_size:
        raise _too_large()
    writer = blobs.writer(spec.decoded_length if spec.chunked else spec.content_length)
    digest = _Digest(spec, writer, identity, max_size)

    def finish(rest: list[bytes]) -> T:
        digest.feed(rest)
        md5_hex, computed = digest.finish()
        return then(ReceivedBody(writer.commit(), writer.size, md5_hex, computed))

    try:
        rest = await _gather(stream, digest)
        return await off_loop(finish, rest)
    except BaseException:
        # off_loop waits for the call even if this task is cancelled again meanwhile.
        await off_loop(writer.abort)
        raise


async def receive_small(stream: AsyncIterator[bytes], spec: BodySpec, *,
                        identity: Identity | None = None) -> bytes:
    sink = _MemorySink()
    digest = _Digest(spec, sink, identity, MAX_SMALL_BODY)

    def finish(rest: list[bytes]) -> bytes:
        digest.feed(rest)
        digest.finish()
        return sink.value()

    return await off_loop(finish, await _gather(stream, digest))


async def _gather(stream: AsyncIterator[bytes], digest: _Digest) -> list[bytes]:
    """Read the body from the socket, handing each full batch to worker threads; returns the
    last, partial batch (all of a small body) for the caller to finish with in one hop.

    Pipelined: while the workers hash and write one batch, the loop reads the next (at most
    two batches of a request in memory). A plain body's batch goes to two workers at once, its
    MD5 in one and everything else (other checksums, the write) in the other: hashlib lets go
    of the GIL over large buffers, so the two use two cores, and the MD5 every PUT owes its
    ETag, the slowest sum, no longer adds the write's time to the request's."""
    batch: list[bytes] = []
    size = 0
    running: list[asyncio.Future[None]] = []  # the previous batch, one future per lane
    try:
        async for raw in stream:
            if not raw:
                continue
            batch.append(raw)
            size += len(raw)
            if size > BATCH:  # a body of exactly BATCH bytes ends in one hop
                await _settle(running)  # each lane takes the batches in order
                running = [asyncio.ensure_future(off_loop(lane, batch)) for lane in digest.lanes]
                batch, size = [], 0
        await _settle(running)
    except ClientDisconnect:
        await _wait_out(running)
        raise S3Error("IncompleteBody", "The request body terminated unexpectedly.") from None
    except BaseException:
        await _wait_out(running)  # nothing may touch the blob while a lane still writes it
        raise
    return batch


async def _settle(running: list[asyncio.Future[None]]) -> None:
    """Wait for every lane of a batch, then raise the first failure among them."""
    await _wait_out(running)
    for lane in running:
        lane.result()


async def _wait_out(running: list[asyncio.Future[None]]) -> None:
    """Wait until every lane has ended, even if this task is cancelled meanwhile (as off_loop
    does): a lane half way through a write must end before the blob is aborted."""
    cancelled = False
    while running and not all(lane.done() for lane in running):
        try:
            await asyncio.wait(running)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()


class _Digest:
    """Every check and sum over one body, fed its raw bytes in order; `finish` raises the S3
    error of the first claim that does not hold. Not thread-safe: one batch at a time through
    `feed`, or through each of `lanes` (which share nothing) one batch at a time."""

    def __init__(self, spec: BodySpec, sink: BlobWriter | _MemorySink, identity: Identity | None,
                 max_size: int) -> None:
        sha = spec.content_sha256
        self._spec = spec
        self._sink = sink
        self._max_size = max_size
        self._payload_hash = None
        if sha and sha != UNSIGNED and sha != UNSIGNED_STREAMING and sha not in SIGNED_STREAMING:
            if sha.startswith("STREAMING-"):
                raise S3Error("NotImplemented", f"x-amz-content-sha256 {sha} is not supported.", 501)
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
                raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a "
                              "STREAMING-* value or the hex SHA-256 of the payload.")
            # The hash covers the bytes as sent, aws-chunked framing included.
            self._payload_hash = hashlib.sha256()
        # Only a SigV4 request (signed in its headers) carries the key chunk signatures chain from.
        self._signer = identity if identity is not None and identity.signing_key is not None else None
        self._decoder = None
        if spec.chunked and sha in SIGNED_STREAMING:
            if self._signer is None:
                raise S3Error("InvalidRequest", "Signed aws-chunked bodies need a SigV4 signature.")
            self._decoder = ChunkedDecoder(partial(chunk_signature, self._signer),
                                           self._signer.seed_signature or "")
        elif spec.chunked:
            self._decoder = ChunkedDecoder()
        algorithms = list(dict.fromkeys([*spec.expected, *spec.trailer_algorithms, *spec.compute]))
        self._hashers = {a: checksums.new_hasher(a) for a in algorithms}
        self._md5 = hashlib.md5()
        self._raw_size = 0

    @property
    def lanes(self) -> list[Callable[[list[bytes]], None]]:
        """What a batch goes through, as functions that may run at the same time, each fed the
        batches in order. Without aws-chunked framing the MD5 is a lane of its own; decoding
        comes before every sum, so a chunked body has one lane."""
        if self._decoder is None:
            return [self._feed_md5, self._feed_rest]
        return [self.feed]

    def _feed_md5(self, raws: list[bytes]) -> None:
        for raw in raws:
            self._md5.update(raw)

    def _feed_rest(self, raws: list[bytes]) -> None:
        for raw in raws:
            self._raw_size += len(raw)
            if self._payload_hash is not None:
                self._payload_hash.update(raw)
            for hasher in self._hashers.values():
                hasher.update(raw)
            self._sink.write(raw)
            if self._max_size and self._sink.size > self._max_size:
                raise _too_large()

    def feed(self, raws: list[bytes]) -> None:
        """Every lane, one after the other (a batch the caller finishes with itself)."""
        if self._decoder is None:
            self._feed_md5(raws)
            self._feed_rest(raws)
            return
        for raw in raws:
            self._raw_size += len(raw)
            if self._payload_hash is not None:
                self._payload_hash.update(raw)
            for piece in self._decoder.feed(raw):
                self._md5.update(piece)
                for hasher in self._hashers.values():
                    hasher.update(piece)
                self._sink.write(piece)
            if self._max_size and self._sink.size > self._max_size:
                raise _too_large()

    def finish(self) -> tuple[str, dict[str, str]]:
        spec, decoder, sha = self._spec, self._decoder, self._spec.content_sha256
        _check(spec, decoder, self._raw_size, self._sink.size,
               self._payload_hash.hexdigest() if self._payload_hash is not None else None,
               self._md5.digest(), self._hashers)
        if decoder is not None and sha == SIGNED_STREAMING[1]:
            claimed = decoder.trailers.get("x-amz-trailer-signature")
            signer = self._signer
            expected = (trailer_signature(signer, decoder.last_signature, decoder.trailer_text)
                        if signer is not None else None)
            if claimed is None or expected is None or not hmac.compare_digest(claimed, expected):
                raise S3Error("SignatureDoesNotMatch", "The trailer signature we calculated does "
                              "not match the signature you provided.", 403)
        return self._md5.hexdigest(), {a: checksums.b64(h.digest())
                                       for a, h in self._hashers.items()}


def _check(spec: BodySpec, decoder: ChunkedDecoder | None, raw_size: int, size: int,
           payload_sha256: str | None, md5: bytes, hashers: dict[str, checksums.Hasher]) -> None:
    trailers: dict[str, str] = {}
    if decoder is not None:
        trailers = decoder.finish()
        if spec.decoded_length is not None and spec.decoded_length != size:
            raise S3Error("IncompleteBody", f"The body decoded to {size} bytes but "
                          f"x-amz-decoded-content-length says {spec.decoded_length}.")
    elif spec.content_length is not None and spec.content_length != raw_size:
        raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by "
                      "the Content-Length HTTP header.")
    claimed_sha = (spec.content_sha256 or "").lower()
    if payload_sha256 is not None and payload_sha256 != claimed_sha:
        raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header "
                      "does not match what was computed.",
                      ClientComputedContentSHA256=claimed_sha,
                      S3ComputedContentSHA256=payload_sha256)
    if spec.content_md5 is not None and not hmac.compare_digest(spec.content_md5, md5):
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
    claims = dict(spec.expected)
    for algorithm in spec.trailer_algorithms:
        value = trailers.get(checksums.header_name(algorithm))
        if value is None:
            raise S3Error("MalformedTrailerError", "The request contained trailing data that was "
                          f"not well-formed: {checksums.header_name(algorithm)} is missing.")
        claims[algorithm] = value
    for algorithm, claimed in claims.items():
        actual = checksums.b64(hashers[algorithm].digest())
        if claimed != actual:
            raise S3Error("BadDigest", f"The {algorithm} you specified did not match the "
                          "calculated checksum.")
