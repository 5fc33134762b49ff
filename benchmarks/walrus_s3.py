"""Walrus against moto_server, same run: boto3 put/get of 1 KiB objects (ops/s) and of 64 MiB
objects (MB/s), plus Walrus's peak resident memory (VmHWM) after the small and after the large
objects, to show that memory does not grow with object size; then 32 concurrent clients
(issue 12's aim: Walrus >= 5x moto_server) putting and getting 1 KiB and 1 MiB objects, every
object read back and checked, with each server's CPU per operation.

    .venv/bin/python benchmarks/walrus_s3.py [--small N] [--large N] [--threads N]
        [--clients N] [--concurrent-small N] [--concurrent-large N] [--concurrent-only]
        [--readme]

Both servers run as their own processes on 127.0.0.1 over plain HTTP. The boto3 client is
path-style, SigV4, with its default CRC32 checksums: one caller, then N threads sharing one
client for the 1 KiB round. The concurrent clients are raw HTTP (see `concurrent_round`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = {"access_key": "AKIABENCH0000000001", "secret_key": "bench-secret-key-000000000",
       "account_id": "123456789012", "account_name": "bench", "user_name": "admin"}
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def server(command: list[str], env: dict[str, str], url: str, probe: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url + probe, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the server process has used (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(url: str, connections: int = 10, **config: object):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=KEY["access_key"], aws_secret_access_key=KEY["secret_key"],
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                      max_pool_connections=connections, **config))


def small_ops(s3, bucket: str, count: int, threads: int = 1,  # type: ignore[no-untyped-def]
              pid: int | None = None) -> tuple[float, float, float, float]:
    """1 KiB puts then gets of `count` keys, by `threads` callers sharing one client: the
    rates, and the server's CPU milliseconds per operation."""
    body = os.urandom(1024)
    prefix = f"small-{threads}"
    for i in range(20):  # warm connections and caches
        s3.put_object(Bucket=bucket, Key=f"warm/{i}", Body=body)
        s3.get_object(Bucket=bucket, Key=f"warm/{i}")["Body"].read()

    def puts(indices: range) -> None:
        for i in indices:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{i:06d}", Body=body)

    def gets(indices: range) -> None:
        for i in indices:
            s3.get_object(Bucket=bucket, Key=f"{prefix}/{i:06d}")["Body"].read()

    rates, cpu = [], []
    for work in (puts, gets):
        shares = [range(t, count, threads) for t in range(threads)]
        cpu_before = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, shares))
        rates.append(count / (time.perf_counter() - started))
        cpu.append((cpu_seconds(pid) - cpu_before) * 1000 / count if pid else float("nan"))
    return rates[0], rates[1], cpu[0], cpu[1]


def large_ops(s3, bucket: str, count: int, path: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    size = path.stat().st_size
    put_time = get_time = 0.0
    for i in range(count):
        with open(path, "rb") as handle:
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"large/{i}", Body=handle)
            put_time += time.perf_counter() - started
        started = time.perf_counter()
        stream = s3.get_object(Bucket=bucket, Key=f"large/{i}")["Body"]
        received = 0
        while chunk := stream.read(MIB):
            received += len(chunk)
        get_time += time.perf_counter() - started
        assert received == size
    return count * size / MIB / put_time, count * size / MIB / get_time


# --- N concurrent clients over raw HTTP ---------------------------------------------------
# boto3 costs several ms of client CPU per call, so with both servers on one small machine a
# boto3 client measures itself. Here every request is presigned (SigV4, query string) before
# the clock starts, and N coroutines, each on its own keep-alive connection, send the
# prepared bytes and read the answers: the client's share of each request is a few µs.


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


def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="walrus-bench-"))
    large = work / "large.bin"
    with open(large, "wb") as handle:
        block = os.urandom(MIB)
        for _ in range(64):
            handle.write(block)
    keys_file = work / "keys.json"
    keys_file.write_text(json.dumps([KEY]))
    results: dict[str, object] = {}
    try:
        walrus_port, moto_port = free_port(), free_port()
        walrus_url, moto_url = f"http://127.0.0.1:{walrus_port}", f"http://127.0.0.1:{moto_port}"
        walrus_env = {"EUCASIM_HOME": str(work / "home"), "CLOUD_SECRET": "bench",
                      "WALRUS_PORT": str(walrus_port), "WALRUS_ACCESS_KEYS": str(keys_file)}
        with server([sys.executable, "-m", "walrus"], walrus_env, walrus_url, "/internal/health") as walrus, \
                server([str(BIN / "moto_server"), "-p", str(moto_port)], {}, moto_url, "/") as moto:
            for name, url, pid in (("walrus", walrus_url, walrus.pid), ("moto", moto_url, moto.pid)):
                s3 = client(url, max(10, args.threads))
                s3.create_bucket(Bucket="bench")
                if not args.concurrent_only:
                    puts, gets, put_cpu, get_cpu = small_ops(s3, "bench", args.small, 1, pid)
                    puts_n, gets_n, _, _ = small_ops(s3, "bench", args.small, args.threads)
                    if name == "walrus":
                        results["walrus_rss_after_small_mib"] = peak_rss_mib(walrus.pid)
                    up, down = large_ops(s3, "bench", args.large, large)
                    if name == "walrus":
                        results["walrus_rss_after_large_mib"] = peak_rss_mib(walrus.pid)
                    results[name] = {"put_1k_ops": puts, "get_1k_ops": gets,
                                     "put_1k_ops_n": puts_n, "get_1k_ops_n": gets_n,
                                     "put_1k_cpu_ms": put_cpu, "get_1k_cpu_ms": get_cpu,
                                     "put_64m_mbps": up, "get_64m_mbps": down}
                # Last, so the memory figures above keep their meaning (one caller's objects).
                results[f"{name}_concurrent"] = concurrent_round(
                    url, "bench", args.clients, args.concurrent_small, args.concurrent_large, pid)
                if name == "walrus":
                    results["walrus_rss_after_concurrent_mib"] = peak_rss_mib(walrus.pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def concurrent_table(results: dict[str, object], args: argparse.Namespace) -> str:
    w, m = results["walrus_concurrent"], results["moto_concurrent"]  # type: ignore[index]
    n = args.clients
    rows = [(f"PUT 1 KiB, {n} clients (ops/s)", "put_1k_ops"),
            (f"GET 1 KiB, {n} clients (ops/s)", "get_1k_ops"),
            (f"PUT 1 MiB, {n} clients (ops/s = MiB/s)", "put_1m_ops"),
            (f"GET 1 MiB, {n} clients (ops/s = MiB/s)", "get_1m_ops")]
    lines = ["| measure | Walrus | moto_server | Walrus / moto |", "|---|---:|---:|---:|"]
    for label, key in rows:
        lines.append(f"| {label} | {w[key]:.1f} | {m[key]:.1f} | {w[key] / m[key]:.2f}× |")  # type: ignore[index]
    for label, key in ((f"server CPU per 1 KiB PUT, {n} clients (ms)", "put_1k_cpu_ms"),
                       (f"server CPU per 1 KiB GET, {n} clients (ms)", "get_1k_cpu_ms"),
                       (f"server CPU per 1 MiB PUT, {n} clients (ms)", "put_1m_cpu_ms"),
                       (f"server CPU per 1 MiB GET, {n} clients (ms)", "get_1m_cpu_ms")):
        lines.append(f"| {label} | {w[key]:.2f} | {m[key]:.2f} | "  # type: ignore[index]
                     f"{m[key] / w[key]:.2f}× less |")  # type: ignore[index]
    lines.append(f"| errors (non-200, or a body read back with another CRC-32) | {w['errors']:.0f} | "  # type: ignore[index]
                 f"{m['errors']:.0f} | |")  # type: ignore[index]
    lines.append("")
    lines.append(f"({args.concurrent_small} objects of 1 KiB and {args.concurrent_large} of 1 MiB, "
                 f"each PUT then read back by GET; raw HTTP/1.1 keep-alive, presigned SigV4; "
                 f"Walrus peak RSS after this round "
                 f"{results['walrus_rss_after_concurrent_mib']:.1f} MiB; load average "
                 f"{os.getloadavg()[0]:.1f} at the end.)")
    return "\n".join(lines)


def table(results: dict[str, object], args: argparse.Namespace) -> str:
    text = concurrent_table(results, args)
    if args.concurrent_only:
        return text
    return text + "\n\n" + sequential_table(results, args)


def sequential_table(results: dict[str, object], args: argparse.Namespace) -> str:
    w, m = results["walrus"], results["moto"]  # type: ignore[index]
    n = args.threads
    rows = [("PUT 1 KiB, 1 caller (ops/s)", "put_1k_ops"),
            ("GET 1 KiB, 1 caller (ops/s)", "get_1k_ops"),
            (f"PUT 1 KiB, {n} callers (ops/s)", "put_1k_ops_n"),
            (f"GET 1 KiB, {n} callers (ops/s)", "get_1k_ops_n"),
            ("PUT 64 MiB (MiB/s)", "put_64m_mbps"), ("GET 64 MiB (MiB/s)", "get_64m_mbps")]
    lines = ["| measure | Walrus | moto_server | Walrus / moto |", "|---|---:|---:|---:|"]
    for label, key in rows:
        lines.append(f"| {label} | {w[key]:.1f} | {m[key]:.1f} | {w[key] / m[key]:.2f}× |")  # type: ignore[index]
    for label, key in (("server CPU per 1 KiB PUT (ms)", "put_1k_cpu_ms"),
                       ("server CPU per 1 KiB GET (ms)", "get_1k_cpu_ms")):
        lines.append(f"| {label} | {w[key]:.2f} | {m[key]:.2f} | "  # type: ignore[index]
                     f"{m[key] / w[key]:.2f}× less |")  # type: ignore[index]
    lines.append("")
    lines.append(f"Walrus peak RSS (VmHWM): {results['walrus_rss_after_small_mib']:.1f} MiB after "
                 f"the 1 KiB objects, {results['walrus_rss_after_large_mib']:.1f} MiB after the "
                 f"64 MiB objects.")
    lines.append(f"({args.small} small and {args.large} large objects each way; "
                 f"{platform.python_implementation()} {platform.python_version()}, "
                 f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.)")
    return "\n".join(lines)


NOTES = """How to read it: client and servers share one small machine, so the ops/s rows measure
boto3 (signing, CRC32, parsing: several ms of CPU per call) as much as the server, and on a busy
machine they move by half from one run to the next (moto's sequential 1 KiB PUT has measured
30 to 62 ops/s here, Walrus's 37 to 85); the "server CPU per operation" rows, read from
/proc/<pid>/stat around the timed loop, compare the servers themselves and hold steadier.
moto keeps objects in memory; Walrus streams each body to a file, fsyncs it and renames it
into place before it answers (a crash never shows half an object), which is most of what a
sequential 1 KiB PUT waits for; with 8 callers those fsyncs overlap in worker threads.
Peak RSS stays flat from 1 KiB to 64 MiB objects: bodies are streamed in chunks both ways."""


def write_readme(text: str) -> None:
    readme = Path(__file__).resolve().parent / "README.md"
    current = readme.read_text() if readme.exists() else "# Benchmarks\n"
    start, end = "<!-- walrus:start -->", "<!-- walrus:end -->"
    section = (f"{start}\n## Walrus\n\nCommand: `.venv/bin/python benchmarks/walrus_s3.py --readme`"
               f"\n\n{text}\n\n{NOTES}\n{end}")
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        current = before + section + after
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500, help="1 KiB objects put and got")
    parser.add_argument("--threads", type=int, default=8, help="callers for the concurrent "
                        "1 KiB round")
    parser.add_argument("--large", type=int, default=3, help="64 MiB objects put and got")
    parser.add_argument("--clients", type=int, default=32, help="concurrent raw-HTTP clients")
    parser.add_argument("--concurrent-small", type=int, default=2000,
                        help="1 KiB objects put and got by the concurrent clients")
    parser.add_argument("--concurrent-large", type=int, default=256,
                        help="1 MiB objects put and got by the concurrent clients")
    parser.add_argument("--concurrent-only", action="store_true",
                        help="only the concurrent round (skip the boto3 measures)")
    parser.add_argument("--readme", action="store_true", help="write the Walrus section of "
                        "benchmarks/README.md")
    args = parser.parse_args()
    results = run(args)
    text = table(results, args)
    print(text)
    if args.readme:
        write_readme(text)


if __name__ == "__main__":
    main()
