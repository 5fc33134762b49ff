"""What versioning costs in Walrus: 1 KiB PUT and GET (ops/s) into an unversioned bucket and a
versioned one, in the same run, against the same Walrus process; plus the cost of reading an
older version by id, and of ListObjectVersions over the keys written.

    .venv/bin/python benchmarks/walrus_versioning.py [--objects N] [--keys N] [--threads N]

Walrus runs as its own process on 127.0.0.1 over plain HTTP; the client is boto3, path-style,
SigV4. Each PUT round overwrites `--keys` keys in turn, so the versioned bucket keeps every
overwritten body (objects / keys versions per key) while the unversioned one replaces it.
Rounds alternate (unversioned, versioned, unversioned, versioned) so that neither side gets the
warmer process; the best of the two rounds of each side is reported."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
KEY = {"access_key": "AKIABENCH0000000001", "secret_key": "bench-secret-key-000000000",
       "account_id": "123456789012", "account_name": "bench", "user_name": "admin"}
BODY = os.urandom(1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def walrus() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="walrus-versioning-bench-") as home:
        keys = Path(home) / "keys.json"
        keys.write_text(json.dumps([KEY]))
        port = free_port()
        env = {**os.environ, "EUCASIM_HOME": home, "CLOUD_SECRET": "bench-secret",
               "WALRUS_PORT": str(port), "WALRUS_ACCESS_KEYS": str(keys),
               "PUBLIC_HTTPS": "false"}
        process = subprocess.Popen([sys.executable, "-m", "walrus"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"walrus exited with {process.returncode}")
                try:
                    if httpx.get(f"{url}/internal/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("walrus did not start")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def client(url: str, threads: int):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=KEY["access_key"],
                        aws_secret_access_key=KEY["secret_key"],
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                      retries={"max_attempts": 1},
                                      max_pool_connections=max(10, threads)))


def rate(count: int, threads: int, one: Callable[[int], None]) -> float:
    started = time.perf_counter()
    if threads == 1:
        for n in range(count):
            one(n)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000, help="PUTs and GETs per round")
    parser.add_argument("--keys", type=int, default=200, help="distinct keys overwritten")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with walrus() as url:
        s3 = client(url, args.threads)
        s3.create_bucket(Bucket="plain")
        s3.create_bucket(Bucket="versioned")
        s3.put_bucket_versioning(Bucket="versioned",
                                 VersioningConfiguration={"Status": "Enabled"})
        results: dict[str, dict[str, list[float]]] = {b: {"put": [], "get": []}
                                                       for b in ("plain", "versioned")}
        for _ in range(2):
            for name in ("plain", "versioned"):
                results[name]["put"].append(rate(args.objects, args.threads, lambda n: s3.put_object(
                    Bucket=name, Key=f"k{n % args.keys:05d}", Body=BODY)))
                results[name]["get"].append(rate(args.objects, args.threads, lambda n: s3.get_object(
                    Bucket=name, Key=f"k{n % args.keys:05d}")["Body"].read()))
        listed = s3.list_object_versions(Bucket="versioned", Prefix="k00000")
        older = [v["VersionId"] for v in listed["Versions"] if not v["IsLatest"]]
        by_id = rate(args.objects, args.threads, lambda n: s3.get_object(
            Bucket="versioned", Key="k00000", VersionId=older[n % len(older)])["Body"].read())
        paginator = s3.get_paginator("list_object_versions")
        started = time.perf_counter()
        total = sum(len(page.get("Versions", []))
                    for page in paginator.paginate(Bucket="versioned"))
        listing = time.perf_counter() - started
    print(f"Walrus versioning cost, 1 KiB objects, {args.objects} requests per round, "
          f"{args.keys} keys, {args.threads} thread(s); {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{'':24}{'unversioned':>14}{'versioned':>14}{'versioned/unv.':>16}")
    for op in ("put", "get"):
        plain, versioned = max(results["plain"][op]), max(results["versioned"][op])
        print(f"{op.upper() + ' ops/s':24}{plain:14.0f}{versioned:14.0f}{versioned / plain:15.0%}")
    print(f"{'GET ?versionId ops/s':24}{'':14}{by_id:14.0f}")
    print(f"ListObjectVersions: {total} versions in {listing * 1000:.0f} ms "
          f"({total / listing:.0f} versions/s, pages of 1000)")


if __name__ == "__main__":
    main()
