"""N concurrent S3 clients over raw HTTP/1.1, for a server's throughput under load.

boto3 costs several ms of client CPU per call, so with both servers on one small machine a
boto3 client measures itself. Here every request is presigned (SigV4, query string) before
the clock starts, and N coroutines, each on its own keep-alive connection, send the prepared
bytes and read the answers: the client's share of each request is a few µs. Every GET's body
is checked against the CRC-32 of what was written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from benchmarks.s3_bench import MIB, client, cpu_seconds


@dataclass
class Op:
    head: bytes
    body: tuple[bytes, ...]  # pieces sent after the head (a 1 MiB body shares its tail)
    crc: int | None  # the CRC-32 a GET's body must have


class Connection:
    """One client's HTTP/1.1 keep-alive connection; reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, op: Op) -> tuple[int, bytes]:
        reused = self.writer is not None
        try:
            return await self._exchange(op)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            if not reused:
                raise
            # A kept-alive connection the server had closed: send once more on a new one.
            return await self._exchange(op)

    async def _exchange(self, op: Op) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(op.head)
        for piece in op.body:
            self.writer.write(piece)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            pieces = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                pieces.append(await self.reader.readexactly(size + 2))
            await self.reader.readuntil(b"\r\n")
            body = b"".join(p[:-2] for p in pieces)
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close" or (version == "HTTP/1.0"
                                                    and headers.get("connection") != "keep-alive"):
            await self.close()
        return int(status), body


async def run_ops(host: str, port: int, connections: list[Connection],
                  ops: list[Op]) -> tuple[float, int]:
    """All `ops` through the connections at once (each takes the next op when it is free):
    the seconds it took and how many failed (a status other than 200, a body whose CRC-32 is
    not the one written, or no answer)."""
    pending = iter(ops)
    errors = 0

    async def client(connection: Connection) -> None:
        nonlocal errors
        for op in pending:
            try:
                status, body = await connection.request(op)
                good = status == 200 and (op.crc is None or zlib.crc32(body) == op.crc)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                await connection.close()
                good = False
            errors += not good

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    return time.perf_counter() - started, errors


def presigned_ops(s3, bucket: str, prefix: str, bodies: list[tuple[bytes, ...]],  # type: ignore[no-untyped-def]
                  host: str) -> tuple[list[Op], list[Op]]:
    """A PUT and a GET of each body under its own key, signed in advance."""
    puts, gets = [], []
    for index, pieces in enumerate(bodies):
        key = f"{prefix}/{index:06d}"
        size = sum(len(p) for p in pieces)
        crc = 0
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
        for method, verb, extra, sent, want in (("put_object", "PUT", f"Content-Length: {size}\r\n",
                                                 pieces, None),
                                                ("get_object", "GET", "", (), crc)):
            url = urlsplit(s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key},
                                                     ExpiresIn=3600))
            head = f"{verb} {url.path}?{url.query} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
            (puts if verb == "PUT" else gets).append(Op(head.encode(), sent, want))
    return puts, gets


def concurrent_round(url: str, bucket: str, clients: int, small: int, large: int,
                     pid: int) -> dict[str, float]:
    """`clients` concurrent clients: PUT then GET `small` 1 KiB objects, then `large` 1 MiB
    objects, every object distinct and every GET checked against what was written; the
    rates, and the server's CPU milliseconds per operation (process `pid`)."""
    s3 = client(url, signature_version="s3v4")  # presigned URLs default to SigV2
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tail = os.urandom(MIB - 8)
    small_puts, small_gets = presigned_ops(s3, bucket, "c-small", [(os.urandom(1024),)
                                                                   for _ in range(small)], parts.netloc)
    large_puts, large_gets = presigned_ops(s3, bucket, "c-large",
                                           [(i.to_bytes(8, "big"), tail) for i in range(large)],
                                           parts.netloc)
    warm_puts, warm_gets = presigned_ops(s3, bucket, "c-warm", [(b"w",)] * clients, parts.netloc)

    async def rounds() -> dict[str, float]:
        connections = [Connection(host, port) for _ in range(clients)]
        results: dict[str, float] = {}
        try:
            await run_ops(host, port, connections, warm_puts)  # open every connection
            await run_ops(host, port, connections, warm_gets)
            errors = 0
            for name, ops in (("put_1k", small_puts), ("get_1k", small_gets),
                              ("put_1m", large_puts), ("get_1m", large_gets)):
                cpu_before = cpu_seconds(pid)
                seconds, failed = await run_ops(host, port, connections, ops)
                results[f"{name}_ops"] = len(ops) / seconds
                results[f"{name}_cpu_ms"] = (cpu_seconds(pid) - cpu_before) * 1000 / len(ops)
                errors += failed
            results["errors"] = errors
        finally:
            for connection in connections:
                await connection.close()
        return results

    return asyncio.run(rounds())
