"""DescribeInstances over 1,000 instances: the server's time, eucasim's CLC against moto_server
in the same run. Aim (issue 12): eucasim at least 30x faster.

    .venv/bin/python -m benchmarks.ec2_describe [--instances 1000] [--calls 20] [--moto-calls 3]

Each endpoint first holds --instances instances (RunInstances 100 a call; on eucasim until all
read `running`, so nothing is launching while it is measured). Then one client sends
DescribeInstances (no filter, every instance) as raw HTTP: signed with botocore's SigV4Auth,
sent with httpx, the body read but never parsed, so the figure is the server's (plus a
loopback transfer of about 1 MB). Reported: the median wall time of a call and the server
process's CPU per call, read from /proc around the timed calls."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from benchmarks.support import Endpoint, RawEc2, eucasim_cloud, load_note, main_guard, moto

NAMESPACE_INSTANCE = b"<instanceId>"


def fill(endpoint: Endpoint, count: int, wait_running: bool, timeout: float = 1200) -> float:
    ec2 = endpoint.ec2()
    started = time.perf_counter()
    for start in range(0, count, 100):
        batch = min(100, count - start)
        ec2.run_instances(ImageId=endpoint.image_id, MinCount=batch, MaxCount=batch,
                          InstanceType=endpoint.instance_type)
    deadline = time.monotonic() + timeout
    while wait_running:
        pending = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending"]}])
        if not pending["Reservations"]:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"instances still pending after {timeout:.0f} s")
        time.sleep(1)
    return time.perf_counter() - started


def measure(endpoint: Endpoint, calls: int, expect: int) -> dict[str, Any]:
    raw = RawEc2(endpoint)
    try:
        body = raw.call("DescribeInstances").content  # warm up, and check the answer's size
        found = body.count(NAMESPACE_INSTANCE)
        if found < expect:
            raise RuntimeError(f"{endpoint.name} described {found} instances, expected {expect}")
        times = []
        cpu = endpoint.cpu_seconds()
        for _ in range(calls):
            before = time.perf_counter()
            raw.call("DescribeInstances")
            times.append(time.perf_counter() - before)
        cpu_per_call = (endpoint.cpu_seconds() - cpu) / calls
    finally:
        raw.close()
    return {"median": statistics.median(times), "min": min(times), "cpu": cpu_per_call,
            "bytes": len(body), "instances": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--moto-calls", type=int, default=3)
    parser.add_argument("--only", choices=("eucasim", "moto"))
    args = parser.parse_args()
    main_guard()
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "moto"):
        with moto() as endpoint:
            fill(endpoint, args.instances, wait_running=False)
            results["moto_server"] = measure(endpoint, args.moto_calls, args.instances)
    if args.only in (None, "eucasim"):
        room = args.instances + 10
        with eucasim_cloud(MAX_CORES=room, MAX_MEM=room * 512, MAX_DISK=room * 10,
                           VNET_ADDRSPERNET=max(32, 2 ** (room.bit_length() + 1))) as endpoint:
            fill(endpoint, args.instances, wait_running=True)
            results["eucasim"] = measure(endpoint, args.calls, args.instances)
    print(f"\nDescribeInstances over {args.instances} instances, raw signed HTTP, no parsing "
          f"({load_note()})")
    print(f"{'':12} {'calls':>6} {'median ms':>10} {'min ms':>8} {'server CPU ms':>14} {'body KB':>8}")
    for name, r in results.items():
        calls = args.calls if name == "eucasim" else args.moto_calls
        print(f"{name:12} {calls:6d} {r['median'] * 1000:10.1f} {r['min'] * 1000:8.1f} "
              f"{r['cpu'] * 1000:14.1f} {r['bytes'] / 1024:8.0f}")
    if len(results) == 2:
        e, m = results["eucasim"], results["moto_server"]
        print(f"eucasim faster by {m['median'] / e['median']:.1f}x (wall), {m['cpu'] / e['cpu']:.1f}x "
              "(server CPU); aim >= 30x")


if __name__ == "__main__":
    main()
