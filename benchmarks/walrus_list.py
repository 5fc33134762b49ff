"""ListObjectsV2 and ListObjects (v1) of 1,000 keys a page, Walrus against moto_server in the
same run: listings per second from one boto3 caller, and each server's CPU per listing (read
from /proc/<pid>/stat around the timed loop, which holds steadier than wall time on a busy
machine).

    .venv/bin/python -m benchmarks.walrus_list [--keys N] [--listings N] [--rounds N]

Both servers run as their own processes on 127.0.0.1 over plain HTTP; the bucket holds `--keys`
1-byte objects under a few prefixes, and every listing asks for the whole first page
(max-keys 1000, with owners for v1 as S3 gives them). Rounds alternate between the servers so
that neither gets the quieter moment; the best round of each is reported."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.s3_bench import client, cpu_seconds, walrus_and_moto


def fill(s3: Any, bucket: str, keys: int) -> None:
    s3.create_bucket(Bucket=bucket)
    names = [f"photos/{n % 7}/img-{n:06d}.jpg" for n in range(keys)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), names))


def timed(s3: Any, bucket: str, listings: int, pid: int, v2: bool) -> tuple[float, float]:
    """(listings per second, server CPU ms per listing)."""
    call = s3.list_objects_v2 if v2 else s3.list_objects
    first = call(Bucket=bucket, MaxKeys=1000)
    assert len(first["Contents"]) == min(1000, len(first["Contents"]))
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    for _ in range(listings):
        call(Bucket=bucket, MaxKeys=1000)
    wall = time.perf_counter() - started
    return listings / wall, (cpu_seconds(pid) - cpu) * 1000 / listings


def run(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, float]]]:
    work = Path(tempfile.mkdtemp(prefix="walrus-list-bench-"))
    best: dict[str, dict[str, tuple[float, float]]] = {"walrus": {}, "moto": {}}
    try:
        with walrus_and_moto(work) as servers:
            sides = {"walrus": (client(servers.walrus_url), servers.walrus_pid),
                     "moto": (client(servers.moto_url), servers.moto_pid)}
            for s3, _ in sides.values():
                fill(s3, "bench", args.keys)
            for _ in range(args.rounds):
                for name, (s3, pid) in sides.items():
                    for label, v2 in (("v2", True), ("v1", False)):
                        rate, cpu = timed(s3, "bench", args.listings, pid, v2)
                        old = best[name].get(label)
                        # Best round: most listings per second, least CPU per listing.
                        best[name][label] = (max(rate, old[0]) if old else rate,
                                             min(cpu, old[1]) if old else cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--listings", type=int, default=100, help="listings per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = run(args)
    print("| listing of 1,000 keys | Walrus | moto_server | Walrus / moto |")
    print("|---|---:|---:|---:|")
    for label, title in (("v2", "ListObjectsV2"), ("v1", "ListObjects")):
        (w_rate, w_cpu), (m_rate, m_cpu) = best["walrus"][label], best["moto"][label]
        print(f"| {title} (listings/s) | {w_rate:.1f} | {m_rate:.1f} | {w_rate / m_rate:.2f}× |")
        print(f"| {title}, server CPU per listing (ms) | {w_cpu:.1f} | {m_cpu:.1f} | "
              f"{m_cpu / w_cpu:.2f}× less |")


if __name__ == "__main__":
    main()
