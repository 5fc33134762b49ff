"""Walrus over Ceph RGW (WALRUS_BACKEND=s3) against RGW directly, in the same run: PUT and GET
latency (p50, p99) of 1 KiB and 16 MiB objects. Issue 17's aim: Walrus adds at most 30% to
RGW's own latency. A Walrus on files (WALRUS_BACKEND=file) is measured beside them, for what
Walrus itself costs.

    .venv/bin/python benchmarks/walrus_rgw.py [--small N] [--large N]

It starts its own throwaway Ceph (tests/support/ceph.py: mon, memstore OSD, radosgw on a
loopback address of its own) and one Walrus process whose bodies go to a bucket of that RGW,
and stops both when it ends. Both targets are measured with the same boto3 client settings
(path-style SigV4, no optional CRC checksums: Ceph 16 takes no aws-chunked trailers), one
caller, each request timed from the call to the last body byte read. The two targets take
turns request by request, so a change in the machine's load falls on both alike.

A second table times Walrus's own hop to RGW for a 1 KiB blob, in this process: through
botocore's client (walrus/s3_cluster.py, what every blob request took before) and through
walrus/s3_http.py (what a blob's GET, PUT and DELETE take now), taking turns."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.support import load_note, main_guard, percentile  # noqa: E402
from services.messages.identity import AccessKeyInfo  # noqa: E402
from tests.support.ceph import ceph_cluster  # noqa: E402
from tests.walrus.process import walrus_process  # noqa: E402
from walrus.s3_cluster import S3Location, backend_client  # noqa: E402
from walrus.s3_http import ClusterHTTP  # noqa: E402

KEY = AccessKeyInfo(access_key="AKIABENCH0000000001", secret_key="bench-secret-key-000000000",
                    account_id="123456789012", account_name="bench", user_name="admin")
KIB, MIB = 1024, 1024 * 1024
AIM = 1.30


def client(url: str, access_key: str, secret_key: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        config=Config(s3={"addressing_style": "path"},
                                      request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required",
                                      retries={"total_max_attempts": 1}))


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(targets: dict[str, tuple[Any, str]], size: int, count: int) -> dict[str, dict[str, list[float]]]:
    """PUT then GET `count` objects of `size` bytes on each target, taking turns."""
    body = os.urandom(size)
    times: dict[str, dict[str, list[float]]] = {name: {"PUT": [], "GET": []} for name in targets}
    warmup = 3
    for op in ("PUT", "GET"):
        for index in range(-warmup, count):
            for name, (s3, bucket) in targets.items():
                key = f"{size}/{index}"
                if op == "PUT":
                    elapsed = timed(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body))
                else:
                    def get() -> None:
                        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                        assert len(data) == size
                    elapsed = timed(get)
                if index >= 0:
                    times[name][op].append(elapsed)
    return times


def report(label: str, times: dict[str, dict[str, list[float]]]) -> list[str]:
    rows = []
    for op in ("PUT", "GET"):
        walrus, rgw, files = times["walrus"][op], times["rgw"][op], times["files"][op]
        w50, w99 = percentile(walrus, 0.50), percentile(walrus, 0.99)
        r50, r99 = percentile(rgw, 0.50), percentile(rgw, 0.99)
        f50, f99 = percentile(files, 0.50), percentile(files, 0.99)
        ratio = w50 / r50
        rows.append(f"| {op} {label} | {r50:.1f} / {r99:.1f} | {w50:.1f} / {w99:.1f} | "
                    f"{ratio:.2f}× p50, {w99 / r99:.2f}× p99 | "
                    f"{'yes' if ratio <= AIM else 'no'} | {f50:.1f} / {f99:.1f} |")
    return rows


def hop(endpoint: str, access_key: str, secret_key: str, count: int) -> list[str]:
    """Walrus's request for a 1 KiB blob: botocore's client against walrus/s3_http.py."""
    location = S3Location(endpoint, access_key, secret_key, f"hop-{uuid.uuid4().hex[:8]}")
    boto, http = backend_client(location), ClusterHTTP(location, 4)
    boto.create_bucket(Bucket=location.bucket)
    body, key = os.urandom(KIB), uuid.uuid4().hex
    calls: dict[str, dict[str, Callable[[], object]]] = {
        "PUT": {"botocore": lambda: boto.put_object(Bucket=location.bucket, Key=key, Body=body),
                "s3_http": lambda: http.put(key, body)},
        "GET": {"botocore": lambda: boto.get_object(Bucket=location.bucket, Key=key)["Body"].read(),
                "s3_http": lambda: http.get(key).read()}}
    rows = ["| Walrus → RGW, 1 KiB | botocore client p50 / p99 ms | s3_http p50 / p99 ms | "
            "s3_http ÷ botocore |", "|---|---:|---:|---|"]
    for op, ways in calls.items():
        times: dict[str, list[float]] = {way: [] for way in ways}
        for index in range(-3, count):
            for way, call in ways.items():
                elapsed = timed(call)
                if index >= 0:
                    times[way].append(elapsed)
        b50, b99 = percentile(times["botocore"], 0.50), percentile(times["botocore"], 0.99)
        h50, h99 = percentile(times["s3_http"], 0.50), percentile(times["s3_http"], 0.99)
        rows.append(f"| {op} | {b50:.2f} / {b99:.2f} | {h50:.2f} / {h99:.2f} | {h50 / b50:.2f}× |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=300, help="1 KiB objects per target")
    parser.add_argument("--large", type=int, default=30, help="16 MiB objects per target")
    args = parser.parse_args()
    main_guard()
    with ceph_cluster() as ceph, tempfile.TemporaryDirectory(prefix="walrus-rgw-") as tmp:
        env = {"WALRUS_BACKEND": "s3", "WALRUS_S3_ENDPOINT": ceph.rgw_endpoint,
               "WALRUS_S3_ACCESS_KEY": ceph.access_key, "WALRUS_S3_SECRET_KEY": ceph.secret_key,
               "WALRUS_S3_BUCKET": f"walrus-{uuid.uuid4().hex[:8]}", "LOG_LEVEL": "WARNING"}
        with walrus_process(Path(tmp) / "s3", [KEY], **env) as (url, _), \
                walrus_process(Path(tmp) / "file", [KEY], LOG_LEVEL="WARNING") as (file_url, _):
            rgw = client(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key)
            rgw.create_bucket(Bucket="direct")
            walrus = client(url, KEY.access_key, KEY.secret_key)
            walrus.create_bucket(Bucket="through-walrus")
            files = client(file_url, KEY.access_key, KEY.secret_key)
            files.create_bucket(Bucket="on-files")
            targets = {"walrus": (walrus, "through-walrus"), "rgw": (rgw, "direct"),
                       "files": (files, "on-files")}
            rows = ["| request | RGW p50 / p99 ms | Walrus over RGW p50 / p99 ms | Walrus ÷ RGW "
                    "| ≤ 1.3× p50? | Walrus on files p50 / p99 ms |",
                    "|---|---:|---:|---|---|---:|"]
            rows += report("1 KiB", measure(targets, KIB, args.small))
            rows += report("16 MiB", measure(targets, 16 * MIB, args.large))
            rows += [""] + hop(ceph.rgw_endpoint, ceph.access_key, ceph.secret_key, args.small)
    print(f"{args.small} × 1 KiB and {args.large} × 16 MiB per target; {load_note()}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
