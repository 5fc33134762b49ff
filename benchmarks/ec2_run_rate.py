"""RunInstances, call answered: one boto3 client launching one instance per call, back to back,
against eucasim's CLC and against moto_server in the same run. Aim (issue 12): eucasim at
least 2x moto_server's rate.

    .venv/bin/python -m benchmarks.ec2_run_rate [--calls 200] [--only eucasim|moto]

The cloud is `eucasim up`'s except for capacity: each of its 2 simulated nodes is given room
for every instance the run launches (MAX_CORES, MAX_MEM, MAX_DISK, VNET_ADDRSPERNET), since the
defaults hold 4 m1.small. Only the RunInstances calls are timed; the instances keep starting in
the background, as they would for a user. Server CPU per call is read from /proc around the
timed loop."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from benchmarks.support import Endpoint, eucasim_cloud, load_note, main_guard, moto, percentile


def run_calls(endpoint: Endpoint, calls: int, warmup: int = 5) -> dict[str, Any]:
    ec2 = endpoint.ec2()
    for _ in range(warmup):
        ec2.run_instances(ImageId=endpoint.image_id, MinCount=1, MaxCount=1,
                          InstanceType=endpoint.instance_type)
    times = []
    cpu = endpoint.cpu_seconds()
    client_cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(calls):
        before = time.perf_counter()
        ec2.run_instances(ImageId=endpoint.image_id, MinCount=1, MaxCount=1,
                          InstanceType=endpoint.instance_type)
        times.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    return {"rate": calls / elapsed, "p50": statistics.median(times), "p99": percentile(times, 0.99),
            "cpu_per_call": (endpoint.cpu_seconds() - cpu) / calls,
            "client_cpu_per_call": (time.process_time() - client_cpu) / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--only", choices=("eucasim", "moto"))
    args = parser.parse_args()
    main_guard()
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "moto"):
        with moto() as endpoint:
            results["moto_server"] = run_calls(endpoint, args.calls)
    if args.only in (None, "eucasim"):
        room = args.calls + 10
        with eucasim_cloud(MAX_CORES=room, MAX_MEM=room * 512, MAX_DISK=room * 10,
                           VNET_ADDRSPERNET=max(32, 2 ** (2 * room).bit_length())) as endpoint:
            results["eucasim"] = run_calls(endpoint, args.calls)
    print(f"\nRunInstances (1 instance a call), {args.calls} sequential calls, one boto3 client "
          f"({load_note()})")
    print(f"{'':12} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'server CPU ms/call':>19} "
          f"{'client CPU ms/call':>19}")
    for name, r in results.items():
        print(f"{name:12} {r['rate']:8.1f} {r['p50'] * 1000:7.1f} {r['p99'] * 1000:7.1f} "
              f"{r['cpu_per_call'] * 1000:19.2f} {r['client_cpu_per_call'] * 1000:19.2f}")
    if len(results) == 2:
        moto_rate = results['moto_server']['rate']
        print(f"eucasim / moto_server rate: {results['eucasim']['rate'] / moto_rate:.2f}x (aim >= 2x)")
        # One client sends a call only once the last is answered: no server can answer it a
        # call sooner than the client's own CPU per call lets it ask.
        ceiling = 1 / results['eucasim']['client_cpu_per_call']
        print(f"the client alone allows at most {ceiling:.0f} calls/s "
              f"({ceiling / moto_rate:.2f}x moto_server's rate), whatever the server")


if __name__ == "__main__":
    main()
