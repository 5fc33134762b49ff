"""What the S3 benchmarks share: Walrus and moto_server, each as its own process on a free
port on 127.0.0.1 over plain HTTP, boto3 clients for them (path-style, SigV4, default CRC32
checksums), the sequential boto3 workloads, and each server's CPU time and peak memory read
from /proc."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Servers:
    """Walrus and moto_server side by side: each one's URL and process id."""
    walrus_url: str
    walrus_pid: int
    moto_url: str
    moto_pid: int


@contextmanager
def walrus_and_moto(work: Path) -> Iterator[Servers]:
    """Walrus (its state under `work`, the benchmark's key its only account) and moto_server,
    both started and both stopped when the block ends."""
    keys_file = work / "keys.json"
    keys_file.write_text(json.dumps([KEY]))
    walrus_port, moto_port = free_port(), free_port()
    walrus_url, moto_url = f"http://127.0.0.1:{walrus_port}", f"http://127.0.0.1:{moto_port}"
    walrus_env = {"EUCASIM_HOME": str(work / "home"), "CLOUD_SECRET": "bench",
                  "WALRUS_PORT": str(walrus_port), "WALRUS_ACCESS_KEYS": str(keys_file)}
    with server([sys.executable, "-m", "walrus"], walrus_env, walrus_url, "/internal/health") as walrus, \
            server([str(BIN / "moto_server"), "-p", str(moto_port)], {}, moto_url, "/") as moto:
        yield Servers(walrus_url, walrus.pid, moto_url, moto.pid)


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
