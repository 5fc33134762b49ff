"""Instances benchmark: RunInstances -> `running` latency (p50, p99) and DescribeInstances
requests/s with N instances in the account, for eucasim (the whole cloud as real processes:
CLC, Walrus, CC, simulated NCs) and moto_server, in the same run on the same machine.

    .venv/bin/python -m benchmarks.instances [--instances 1000] [--samples 30] [--seconds 10]

Latency: one instance per RunInstances, then DescribeInstances every 20 ms until it reads
`running`. Describe: the account holds --instances instances (launched 100 per call, all
running); one client calls DescribeInstances (all of them, no filter) back to back for
--seconds, and the rate is calls per second."""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cloud import running_cloud  # noqa: E402

POLL = 0.02


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def latency(ec2: Any, image: str, samples: int, instance_type: str) -> list[float]:
    results = []
    for _ in range(samples):
        started = time.perf_counter()
        instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                        InstanceType=instance_type)["Instances"][0]["InstanceId"]
        while _state(ec2, instance_id) != "running":
            time.sleep(POLL)
        results.append(time.perf_counter() - started)
        ec2.terminate_instances(InstanceIds=[instance_id])
    return results


def _counts(ec2: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                name = instance["State"]["Name"]
                counts[name] = counts.get(name, 0) + 1
    return counts


def fill(ec2: Any, image: str, count: int, instance_type: str, timeout: float = 900) -> tuple[float, int]:
    """Launch until `count` instances run, 100 a call, launching again for any that failed;
    seconds it took and how many launches failed on the way."""
    started = time.perf_counter()
    launched = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = _counts(ec2)
        running, pending = counts.get("running", 0), counts.get("pending", 0)
        if running >= count:
            return time.perf_counter() - started, launched - running
        missing = count - running - pending
        if missing > 0:
            batch = min(100, missing)
            ec2.run_instances(ImageId=image, MinCount=batch, MaxCount=batch, InstanceType=instance_type)
            launched += batch
        else:
            time.sleep(0.5)
    raise RuntimeError(f"{count} instances were not all running after {timeout} s")


def describe_rate(ec2: Any, seconds: float, expect: int) -> float:
    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        found = ec2.describe_instances()["Reservations"]
        calls += 1
    assert sum(len(r["Instances"]) for r in found) >= expect
    return calls / (time.perf_counter() - started)


def _client(url: str, access: str, secret: str, region: str) -> Any:
    return boto3.client("ec2", endpoint_url=url, region_name=region, aws_access_key_id=access,
                        aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, read_timeout=300))


def bench_eucasim(args: argparse.Namespace) -> dict[str, Any]:
    nodes = 4
    per_node = -(-(args.instances + args.samples + 10) // nodes)
    with tempfile.TemporaryDirectory(prefix="bench-instances-") as home:
        with running_cloud(Path(home), nodes=nodes, SCHEDPOLICY="ROUNDROBIN",
                           NC_POLLING_FREQUENCY=args.polling, MAX_CORES=per_node,
                           MAX_MEM=per_node * 256, MAX_DISK=per_node * 7,
                           VNET_ADDRSPERNET=2048) as cloud:  # one group holds them all
            image = cloud.register_image()
            ec2 = cloud.ec2()
            lat = latency(ec2, image, args.samples, "m1.small")
            filled, failed = fill(ec2, image, args.instances, "m1.small")
            rate = describe_rate(ec2, args.seconds, args.instances)
    return {"latency": lat, "fill_seconds": filled, "failed": failed, "describe_rps": rate}


def bench_moto(args: argparse.Namespace) -> dict[str, Any]:
    # Port 0: moto_server (werkzeug) binds a free port itself and names it in its log.
    log = tempfile.NamedTemporaryFile(prefix="bench-moto-", suffix=".log")  # noqa: SIM115
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", "0"],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(rb"Running on (http://\S+)", Path(log.name).read_bytes())):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        url = found.group(1).decode()
        ec2 = _client(url, "testing", "testing", "us-east-1")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        lat = latency(ec2, image, args.samples, "t2.micro")
        filled, failed = fill(ec2, image, args.instances, "t2.micro")
        rate = describe_rate(ec2, args.seconds, args.instances)
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    return {"latency": lat, "fill_seconds": filled, "failed": failed, "describe_rps": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--polling", type=float, default=0.5, help="NC_POLLING_FREQUENCY for eucasim")
    parser.add_argument("--only", choices=("eucasim", "moto"), default=None)
    args = parser.parse_args()
    # A stopped benchmark still stops the services it started (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    results = {}
    if args.only in (None, "moto"):
        results["moto_server"] = bench_moto(args)
    if args.only in (None, "eucasim"):
        results["eucasim"] = bench_eucasim(args)
    print(f"\n{args.instances} instances, {args.samples} latency samples, "
          f"{args.seconds:.0f} s of DescribeInstances (eucasim NC_POLLING_FREQUENCY={args.polling})")
    print(f"{'':12} {'run->running p50':>17} {'p99':>8} {'fill (s)':>9} {'failed':>7} {'Describe req/s':>15}")
    for name, r in results.items():
        print(f"{name:12} {statistics.median(r['latency']) * 1000:14.0f} ms "
              f"{percentile(r['latency'], 0.99) * 1000:5.0f} ms {r['fill_seconds']:9.1f} {r['failed']:7d} "
              f"{r['describe_rps']:15.1f}")


if __name__ == "__main__":
    main()
