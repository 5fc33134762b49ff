"""The cluster controller at zone scale: place many instances on many simulated nodes through
a real CC process, and measure how long until every one runs, and the memory of each process.

    .venv/bin/python benchmarks/cc_placement.py                  # 1,000 on 100 nodes, 100 a call
    .venv/bin/python benchmarks/cc_placement.py --large          # 40,000 on 20,000 nodes, 1,000 a call
        [--nodes N] [--instances N] [--per-call N] [--concurrency N] [--policy P] [--poll S]
        [--cores N] [--hypervisor test|fake] [--fake-nc]

One NC process serves every node (simulated multi-node mode: libvirt's test driver by default,
`--hypervisor fake` for the NC's in-memory hypervisor, HYPERVISOR_URI=fake://; `--large` takes
fake), one CC process places on them; both real processes on 127.0.0.1. `--fake-nc` replaces
the NC by tests/cc/fake_nc.py in its own process (it answers at once and pushes each instance
running), which measures the CC alone.

A CLC stand-in in this process subscribes to the zone (DescribeZone.subscribe), as the CLC
does, and learns from the CC's pushes when instances run; the client sends RunInstances of
`--per-call` m1.small each from `--concurrency` threads. Reported:
  - decision: the CC's own time to choose and reserve nodes for one call (its trace);
  - call: the client's time for one RunInstances, NC calls included (placed = pending);
  - placed: wall time for all calls; running: until the pushes said every instance runs
    (checked once against the CC's DescribeInstances);
  - the peak and current RSS of the CC, the NC and this process, and that no node was given
    more cores than it has."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.internal import InternalClient  # noqa: E402
from services.messages.cluster import (CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE, CC_NODES_ROUTE,  # noqa: E402
                                       ClusterInstanceList, DescribeZone, NodeList,
                                       RunInstancesResult, ZoneReport)
from services.messages.node import Subscription  # noqa: E402
from services.tracing import Trace, bind_request_id, new_request_id, unbind_request_id  # noqa: E402
from tests.cc.cc_process import start_cc, wait_for  # noqa: E402
from tests.cc.fake_nc import ClcStandIn  # noqa: E402
from tests.cc.zone import SMALL, run_request  # noqa: E402
from tests.support.nc_process import NcProcess  # noqa: E402
from benchmarks.support import free_port  # noqa: E402
from tests.support.servers import running  # noqa: E402

SECRET = "bench-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"median {statistics.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms, "
            f"max {max(values):.2f} ms")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used: on a shared machine the wall times above
    depend on the load, this does not."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> str:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return f"peak {fields.get('VmHWM', '?')}, now {fields.get('VmRSS', '?')}"


class FakeNcProcess:
    """tests/cc/fake_nc.py in its own uvicorn process, with the NcProcess attributes used here."""

    def __init__(self, home: Path, nodes: int, cores: int) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.node_urls = [f"{self.url}/node-{n}" for n in range(1, nodes + 1)]
        self._log = open(home / "fake-nc.log", "wb")  # noqa: SIM115 - the process's life
        env = {**os.environ, "CLOUD_SECRET": SECRET, "FAKE_NC_NODES": str(nodes),
               "FAKE_NC_CORES": str(cores), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "tests.cc.fake_nc:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def start(self, timeout: float) -> None:
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/docs", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout, "the fake NC to answer")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)
        self._log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true",
                        help="40,000 instances on 20,000 nodes, 1,000 a call, fake hypervisor")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--instances", type=int)
    parser.add_argument("--per-call", type=int)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--policy", default="ROUNDROBIN", choices=["GREEDY", "ROUNDROBIN", "POWERSAVE"])
    parser.add_argument("--poll", type=float, default=6.0, help="NC_POLLING_FREQUENCY of the CC")
    parser.add_argument("--cores", type=int, default=None, help="MAX_CORES of every node")
    parser.add_argument("--hypervisor", choices=["test", "fake"], default=None)
    parser.add_argument("--fake-nc", action="store_true", help="tests/cc/fake_nc.py instead of the NC")
    args = parser.parse_args()
    large = args.large
    args.nodes = args.nodes or (20_000 if large else 100)
    args.instances = args.instances or (40_000 if large else 1_000)
    args.per_call = args.per_call or (1_000 if large else 100)
    args.cores = args.cores or (4 if large else 16)
    args.hypervisor = args.hypervisor or ("fake" if large else "test")

    home = Path(tempfile.mkdtemp(prefix="eucasim-cc-bench-"))
    started = time.perf_counter()
    nc: NcProcess | FakeNcProcess
    if args.fake_nc:
        nc = FakeNcProcess(home / "nc", args.nodes, args.cores)
    else:
        uri = "fake://" if args.hypervisor == "fake" else "test:///default"
        nc = NcProcess(home / "nc", SECRET, nodes=args.nodes, max_cores=args.cores,
                       max_mem=args.cores * 1024, max_disk=args.cores * 10,
                       extra_env={"HYPERVISOR_URI": uri})
    try:
        nc.start(timeout=600)
        nc_up = time.perf_counter() - started
        # The node list goes in a file: 20,000 URLs are too long for one environment variable.
        # Unquoted: the conf reader's shlex builds one quoted token a character at a time,
        # which takes minutes for 700 kB, while unquoted words are each short.
        conf = home / "cc" / "eucalyptus.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f'NODES={" ".join(nc.node_urls)}\n')
        cc = start_cc(home / "cc", SECRET, wait=False, SCHEDPOLICY=args.policy,
                      NC_POLLING_FREQUENCY=args.poll, EUCASIM_CONF=str(conf))
        try:
            # Longer than the tests allow: reading 20,000 nodes on a loaded machine.
            wait_for(lambda: answers(cc.url), 600, "the CC to answer", every=0.5)
            t0 = time.perf_counter()
            wait_for(lambda: all(n.state == "up" for n in
                                 cc.client.call("GET", CC_NODES_ROUTE, response=NodeList).nodes),
                     900, "every node to be up", every=1.0)
            print(f"{args.nodes} nodes up {time.perf_counter() - t0:.1f} s after the CC answered "
                  f"(NC process started in {nc_up:.1f} s)", flush=True)
            clc = ClcStandIn(SECRET, keep=False, deltas=True)
            with running(clc.app) as clc_url:
                cc.client.call("POST", CC_DESCRIBE_ROUTE,
                               DescribeZone(subscribe=Subscription(url=clc_url, key="zone-1")), ZoneReport)
                run(cc, nc, clc, args)
        finally:
            cc.stop()
    finally:
        nc.stop()
        shutil.rmtree(home, ignore_errors=True)     # 20,000 nodes' folders and databases


def answers(url: str) -> bool:
    import httpx
    try:
        return httpx.get(f"{url}/internal/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run(cc, nc, clc: ClcStandIn, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    calls = -(-args.instances // args.per_call)
    clients = [InternalClient(cc.url, SECRET, timeout=600) for _ in range(args.concurrency)]
    request_ids = [new_request_id() for _ in range(calls)]

    def one(index: int) -> tuple[list[str], float]:
        client = clients[index % args.concurrency]
        count = min(args.per_call, args.instances - index * args.per_call)
        token = bind_request_id(request_ids[index])
        try:
            t0 = time.perf_counter()
            result = client.call("POST", CC_INSTANCES_ROUTE, run_request(SMALL, count=count),
                                 RunInstancesResult)
            elapsed = (time.perf_counter() - t0) * 1000
        finally:
            unbind_request_id(token)
        if calls >= 10:
            print(f"  call {index + 1}/{calls}: {elapsed / 1000:.1f} s, CC CPU so far "
                  f"{cpu_seconds(cc.process.pid) - cpu_before['CC']:.1f} s, CC RSS {rss(cc.process.pid)}",
                  flush=True)
        return [("failed: " + p.reason.message) if p.reason else p.instance_id for p in result.placed], elapsed

    cpu_before = {name: cpu_seconds(pid) for name, pid in
                  (("CC", cc.process.pid), ("NC", nc.process.pid), ("client", os.getpid()))}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        outcomes = list(pool.map(one, range(calls)))
    placed_s = time.perf_counter() - t0
    launched = {i for ids, _ in outcomes for i in ids if not i.startswith("failed")}
    failures = [i for ids, _ in outcomes for i in ids if i.startswith("failed")]

    def all_running() -> bool:
        states = clc.instance_states()
        return sum(states.get(i) == "running" for i in launched) >= len(launched)

    try:
        wait_for(all_running, 900, "every instance to be pushed running", every=0.1)
    except AssertionError:
        print(f"not all running: {Counter(clc.instance_states().values())}")
        raise
    running_s = time.perf_counter() - t0
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in
           (("CC", cc.process.pid), ("NC", nc.process.pid), ("client", os.getpid()))}
    load = os.getloadavg()[0]
    listing = cc.client.call("GET", CC_INSTANCES_ROUTE, response=ClusterInstanceList)
    described = sum(i.state == "running" for i in listing.instances if i.instance_id in launched)

    decisions = []
    for rid in request_ids:
        trace = cc.client.call("GET", f"/internal/trace/{rid}", response=Trace)
        decisions += [s.elapsed_ms for s in trace.steps
                      if s.kind == "decided" and s.elapsed_ms is not None]
    nodes = cc.client.call("GET", CC_NODES_ROUTE, response=NodeList).nodes
    overbooked = [n.name for n in nodes if n.free is not None and n.free.cores < 0]
    per_node = Counter(i.node_id for i in listing.instances)

    kind = "fake NC (tests/cc/fake_nc.py)" if args.fake_nc else f"NC, hypervisor {args.hypervisor}"
    print(f"policy {args.policy}, {args.instances} x m1.small on {args.nodes} nodes of "
          f"{args.cores} cores ({kind}), {args.per_call} a call from {args.concurrency} "
          f"thread(s), poll every {args.poll:g} s; {platform.python_implementation()} "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores")
    print(f"decision per call (CC trace): {summary(decisions)}")
    print(f"call (client, NC calls included): {summary([e for _, e in outcomes])}")
    print(f"placed all: {placed_s:.2f} s ({len(launched) / placed_s:.0f} instances/s); "
          f"all running (pushed to the CLC stand-in): {running_s:.2f} s; "
          f"described running by the CC: {described}; pushes received: {clc.pushes}")
    print(f"instances per node: min {min(per_node.values())}, max {max(per_node.values())}; "
          f"failed: {len(failures)}; nodes overbooked: {len(overbooked)}")
    print("CPU from the first call until all ran: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items())
          + f" (CC {cpu['CC'] * 1000 / max(1, len(launched)):.2f} ms an instance); "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"RSS: CC {rss(cc.process.pid)}; NC {rss(nc.process.pid)}; "
          f"this process (client and CLC stand-in) {rss(os.getpid())}")
    for client in clients:
        client.close()


if __name__ == "__main__":
    main()
