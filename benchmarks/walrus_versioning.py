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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.s3_bench import KEY, client, free_port, server  # noqa: E402

BODY = os.urandom(1024)


@contextmanager
def walrus() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="walrus-versioning-bench-") as home:
        keys = Path(home) / "keys.json"
        keys.write_text(json.dumps([KEY]))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"EUCASIM_HOME": home, "CLOUD_SECRET": "bench-secret", "WALRUS_PORT": str(port),
               "WALRUS_ACCESS_KEYS": str(keys), "PUBLIC_HTTPS": "false"}
        with server([sys.executable, "-m", "walrus"], env, url, "/internal/health"):
            yield url


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
        s3 = client(url, max(10, args.threads), signature_version="s3v4")
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
