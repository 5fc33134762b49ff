"""No blocking work on Walrus's event loop: a slow or stuck S3 request never holds up a small
GET beside it. Each test keeps one request unfinished on purpose (a body half sent, a body
half read, a database write lock held) and asserts that a small GET is answered before that
request can finish; a stall would show as the small GET's read timeout, never as a pass."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from tests.support.waiting import wait_for
from tests.walrus.conftest import ALICE

CHUNK = 256 * 1024


def raw_request(url: str, method: str, headers: dict[str, str], rcvbuf: int | None = None) -> socket.socket:
    """Open a connection and send a request's head only; the caller sends or reads the rest."""
    parts = urlsplit(url)
    sock = socket.socket()
    if rcvbuf is not None:
        # Before connecting, so the kernel cannot buffer much of a large answer for us.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(60)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    return sock


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and whatever body bytes arrived with them."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"connection closed before the response head: {data!r}"
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, rest


def read_exactly(sock: socket.socket, count: int, start: bytes = b"") -> bytes:
    chunks = [start]
    received = len(start)
    while received < count:
        more = sock.recv(min(1024 * 1024, count - received))
        assert more, f"connection closed after {received} of {count} bytes"
        chunks.append(more)
        received += len(more)
    return b"".join(chunks)


def small_get_client(walrus):  # type: ignore[no-untyped-def]
    # A stalled event loop shows up as this client's read timeout: the test then fails.
    return walrus.client(ALICE, read_timeout=20, connect_timeout=5)


def test_small_get_is_answered_while_a_large_put_body_is_still_arriving(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="small", Body=b"small object")
    body = b"".join(bytes([i]) * CHUNK for i in range(16))
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "large"})
    small = small_get_client(walrus)
    events: list[str] = []
    with raw_request(url, "PUT", {"Content-Length": str(len(body))}) as slow:
        for index in range(16):
            slow.sendall(body[index * CHUNK:(index + 1) * CHUNK])
            events.append(f"chunk {index}")
            if index in (0, 7):
                # Walrus holds an unfinished PUT: the small GET must not wait for it.
                assert small.get_object(Bucket=bucket, Key="small")["Body"].read() == b"small object"
                events.append("small GET answered")
        status, _, _ = read_head(slow)
    assert status == 200
    assert events.index("small GET answered") < events.index("chunk 15")
    assert events.count("small GET answered") == 2
    stored = s3.get_object(Bucket=bucket, Key="large")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()


def test_small_get_is_answered_while_a_slow_reader_holds_a_large_get(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    # Far larger than the socket buffers on both sides, so Walrus is left waiting to send.
    size = 48 * 1024 * 1024
    block = hashlib.sha256(b"walrus").digest() * (CHUNK // 32)
    body = block * (size // len(block))
    s3.put_object(Bucket=bucket, Key="large", Body=body)
    s3.put_object(Bucket=bucket, Key="small", Body=b"small object")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "large"})
    small = small_get_client(walrus)
    events: list[str] = []
    with raw_request(url, "GET", {}, rcvbuf=64 * 1024) as slow:
        status, headers, first = read_head(slow)
        assert status == 200 and int(headers["content-length"]) == size
        events.append("slow reader has the head")
        assert small.get_object(Bucket=bucket, Key="small")["Body"].read() == b"small object"
        events.append("small GET answered")
        received = read_exactly(slow, size, first)
        events.append("slow reader has the last byte")
    assert events == ["slow reader has the head", "small GET answered",
                      "slow reader has the last byte"]
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()


@contextmanager
def write_lock(database_file: str) -> Iterator[None]:
    """Hold SQLite's write lock on Walrus's database, as a long transaction would."""
    connection = sqlite3.connect(database_file, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def test_small_get_is_answered_while_a_put_waits_for_the_database(walrus, s3, bucket):  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="small", Body=b"small object")
    small = small_get_client(walrus)
    database_file = walrus.config.database_url("walrus").split("///", 1)[1]
    def committed_blobs() -> set[str]:
        return set(walrus.stored_blobs())

    blobs_before = committed_blobs()
    outcome: dict[str, object] = {}

    def put() -> None:
        try:
            outcome["etag"] = walrus.client(ALICE, read_timeout=60).put_object(
                Bucket=bucket, Key="waiting", Body=b"waits for the lock")["ETag"]
        except Exception as error:  # reported by the main thread's assertion
            outcome["error"] = error

    writer = threading.Thread(target=put)
    with write_lock(database_file):
        writer.start()
        # The body is on disk once its blob appears; its row then waits for our lock.
        wait_for(lambda: committed_blobs() - blobs_before, what="the PUT's blob")
        assert small.get_object(Bucket=bucket, Key="small")["Body"].read() == b"small object"
        assert not outcome, "the PUT finished while the database was locked"
    writer.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["etag"] == '"' + hashlib.md5(b"waits for the lock").hexdigest() + '"'
    assert s3.get_object(Bucket=bucket, Key="waiting")["Body"].read() == b"waits for the lock"
