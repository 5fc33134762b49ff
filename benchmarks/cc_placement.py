"""The cluster controller's scheduler at zone scale: place 1,000 instances on 100 simulated
nodes and measure how long the CC takes per decision and end to end.

    .venv/bin/python benchmarks/cc_placement.py [--nodes 100] [--instances 1000]
        [--concurrency 8] [--policy ROUNDROBIN] [--poll 2] [--cores 16]

One NC process serves the nodes (simulated multi-node mode, libvirt's test driver; every
instance is really defined and started there), one CC process polls them; both real
processes on 127.0.0.1. The client sends one RunInstances (one m1.small) per request from
`--concurrency` threads, as a busy CLC would. Reported:
  - decision: the CC's own time to choose and reserve a node, read from its trace of each
    request (the `decided` step's elapsed_ms), so HTTP and the NC call are left out;
  - request: the client's time for the whole CC call, NC call included (placed = the NC
    has accepted the instance, state pending);
  - placed: wall time for all requests; running: until the CC describes all of them running;
  - the check that no node was given more cores than it has."""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.internal import InternalClient  # noqa: E402
from services.messages.cluster import ClusterInstanceList, NodeList, RunInstancesResult  # noqa: E402
from services.tracing import Trace, bind_request_id, new_request_id, unbind_request_id  # noqa: E402
from tests.cc.cc_process import start_cc, wait_for  # noqa: E402
from tests.cc.zone import SMALL, run_request  # noqa: E402
from tests.support.nc_process import NcProcess  # noqa: E402

SECRET = "bench-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms, "
            f"max {max(values):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--policy", default="ROUNDROBIN", choices=["GREEDY", "ROUNDROBIN", "POWERSAVE"])
    parser.add_argument("--poll", type=float, default=2.0, help="NC_POLLING_FREQUENCY of the CC")
    parser.add_argument("--cores", type=int, default=16, help="MAX_CORES of every node")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="eucasim-cc-bench-"))
    nc = NcProcess(home / "nc", SECRET, nodes=args.nodes, max_cores=args.cores,
                   max_mem=args.cores * 1024, max_disk=args.cores * 10)
    started = time.perf_counter()
    nc.start(timeout=300)
    nc_up = time.perf_counter() - started
    cc = start_cc(home / "cc", SECRET, NODES=" ".join(nc.node_urls), SCHEDPOLICY=args.policy,
                  NC_POLLING_FREQUENCY=args.poll)
    try:
        wait_for(lambda: all(n.state == "up" for n in
                             cc.client.call("GET", "/internal/nodes", response=NodeList).nodes),
                 120, "every node to be up")
        print(f"{args.nodes} nodes up (NC process started in {nc_up:.1f} s)", flush=True)
        run(cc, nc, args)
    finally:
        cc.stop()
        nc.stop()


def run(cc, nc, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    clients = [InternalClient(cc.url, SECRET) for _ in range(args.concurrency)]
    request_ids = [new_request_id() for _ in range(args.instances)]

    def one(index: int) -> tuple[str, float]:
        client = clients[index % args.concurrency]
        token = bind_request_id(request_ids[index])
        try:
            t0 = time.perf_counter()
            result = client.call("POST", "/internal/instances", run_request(SMALL), RunInstancesResult)
            elapsed = (time.perf_counter() - t0) * 1000
        finally:
            unbind_request_id(token)
        placement = result.placed[0]
        return ("failed: " + placement.reason.message if placement.reason else placement.node), elapsed

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        outcomes = list(pool.map(one, range(args.instances)))
    placed_s = time.perf_counter() - t0

    seen: dict[str, object] = {}

    def all_running() -> bool:
        listing = cc.client.call("GET", "/internal/instances", response=ClusterInstanceList)
        seen["states"] = Counter(i.state for i in listing.instances)
        seen["nodes"] = Counter(n.state for n in
                                cc.client.call("GET", "/internal/nodes", response=NodeList).nodes)
        return sum(i.state == "running" for i in listing.instances) >= args.instances

    try:
        wait_for(all_running, 300, "every instance to run")
    except AssertionError:
        print(f"not all running: instances {seen.get('states')}, nodes {seen.get('nodes')}")
        raise
    running_s = time.perf_counter() - t0

    decisions, nc_calls = [], []
    for rid in request_ids:
        trace = cc.client.call("GET", f"/internal/trace/{rid}", response=Trace)
        decisions += [s.elapsed_ms for s in trace.steps
                      if s.kind == "decided" and s.elapsed_ms is not None]
        nc_calls += [s.elapsed_ms for s in trace.steps
                     if s.kind == "called" and s.what.startswith("NC ") and s.elapsed_ms is not None]
    per_node = Counter(node for node, _ in outcomes)
    failures = [o for o in per_node if o.startswith("failed")]
    nodes = cc.client.call("GET", "/internal/nodes", response=NodeList).nodes
    overbooked = [n.name for n in nodes if n.free is not None and n.free.cores < 0]

    print(f"policy {args.policy}, {args.instances} x m1.small on {args.nodes} nodes of "
          f"{args.cores} cores, {args.concurrency} client threads, poll every {args.poll:g} s; "
          f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"decision (CC trace): {summary(decisions)}")
    print(f"NC run call (CC trace): {summary(nc_calls)}")
    print(f"request (client, NC call included): {summary([e for _, e in outcomes])}")
    print(f"placed all: {placed_s:.2f} s ({args.instances / placed_s:.0f} instances/s); "
          f"all running per the CC: {running_s:.2f} s")
    print(f"instances per node: min {min(per_node.values())}, max {max(per_node.values())}; "
          f"failed: {len(failures)}; nodes overbooked: {len(overbooked)}")
    for client in clients:
        client.close()


if __name__ == "__main__":
    main()
