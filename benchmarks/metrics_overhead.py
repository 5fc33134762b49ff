"""What counting a request for /metrics costs on the EC2 front door's hot path, against what the
request itself costs, in the same run.

    .venv/bin/python -m benchmarks.metrics_overhead [--calls 2000] [--observations 200000]

1. In this process: `ServiceMetrics.observe` (one counter increment and one histogram
   observation) over 20 actions x 3 outcomes, against the same loop without it.
2. Against the cloud as `eucasim up` starts it: DescribeRegions (the smallest EC2 call) sent
   raw (SigV4, httpx) --calls times; the median wall time and the CLC's CPU per call, from
   /proc, then the CLC's own count of those calls read back from its /metrics.
The share of a call's server CPU that counting it costs is (1) divided by (2)."""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.support import RawEc2, eucasim_cloud, load_note, main_guard
from services.metrics import ServiceMetrics

ACTIONS = [f"Action{i}" for i in range(20)]
OUTCOMES = ("ok", "InvalidParameterValue", "AuthFailure")


def observe_cost(observations: int) -> tuple[float, float]:
    """(ns per observe, ns per bare loop step)."""
    metrics = ServiceMetrics("bench")
    keys = [(a, o) for a in ACTIONS for o in OUTCOMES]
    plan = [keys[i % len(keys)] for i in range(observations)]
    started = time.perf_counter_ns()
    for action, outcome in plan:
        metrics.observe(action, outcome, 0.0012)
    with_metrics = (time.perf_counter_ns() - started) / observations
    started = time.perf_counter_ns()
    for action, outcome in plan:
        pass
    bare = (time.perf_counter_ns() - started) / observations
    return with_metrics, bare


def main() -> None:
    main_guard()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--observations", type=int, default=200_000)
    args = parser.parse_args()
    observed, bare = observe_cost(args.observations)
    with eucasim_cloud(nodes=1) as endpoint:
        raw = RawEc2(endpoint)
        try:
            for _ in range(50):  # warm: keys cached, codec compiled
                raw.call("DescribeRegions")
            cpu_before = endpoint.cpu_seconds()
            walls = []
            for _ in range(args.calls):
                started = time.perf_counter()
                raw.call("DescribeRegions")
                walls.append(time.perf_counter() - started)
            cpu_per_call = (endpoint.cpu_seconds() - cpu_before) / args.calls
        finally:
            raw.close()
        text = httpx.get(endpoint.url + "/metrics", timeout=10).text
    counted = next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "eucasim_requests_total" and s.labels["action"] == "DescribeRegions"
                   and s.labels["outcome"] == "ok")
    cost = observed - bare
    print(f"observe(): {cost:,.0f} ns per request (loop {bare:,.0f} ns)")
    print(f"DescribeRegions: median {statistics.median(walls) * 1e6:,.0f} us wall, "
          f"{cpu_per_call * 1e6:,.0f} us CLC CPU per call; /metrics counted {counted:.0f} "
          f"of {args.calls + 50}")
    print(f"counting costs {cost / (cpu_per_call * 1e9) * 100:.2f}% of a call's server CPU "
          f"({load_note()})")


if __name__ == "__main__":
    main()
