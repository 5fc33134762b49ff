"""The largest experiment this machine replays within a budget (default ten minutes): one
policy, a generated workload, sizes doubled until a run outlasts the budget or fails. Each
run is `eucasim experiment run` in-process: a fresh cloud of N fake:// nodes, the workload
through boto3, the recording summarized.

    .venv/bin/python benchmarks/experiment_scale.py                      # 8, 16, 32 … nodes
    .venv/bin/python benchmarks/experiment_scale.py --nodes 64 --budget 600 --policy GREEDY

Load grows with the zone: arrivals per hour are `--per-node` × nodes, one hour of workload at
`--speed`, mean lifetime 30 min, so about per-node × nodes / 2 instances run at once."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support import load_note, main_guard  # noqa: E402
from services.experiment.cloud import NodeShape  # noqa: E402
from services.experiment.report import summarize  # noqa: E402
from services.experiment.run import run_one  # noqa: E402
from services.experiment.timescale import TimeScale  # noqa: E402
from services.experiment.workload import Shape, generate  # noqa: E402


def one(nodes: int, per_node: float, policy: str, speed: float, hours: float) -> dict[str, float]:
    workload = generate(1, Shape(hours=hours, arrivals_per_hour=per_node * nodes, mean_duration_s=1800,
                                 mix={"m1.small": 3, "m1.large": 1}, diurnal=0))
    started = time.monotonic()
    recording = run_one(workload, policy, nodes, NodeShape(8, 16384, 500), TimeScale(speed))
    summary = summarize(recording)
    return {"requests": len(workload), "instances": sum(r.count for r in workload),
            "peak_running": summary.peak_running, "refused": summary.refused,
            "wall_s": time.monotonic() - started, "lag_s": recording.lag_s,
            "p50": summary.p50_placement_s, "p99": summary.p99_placement_s}


def main() -> None:
    main_guard()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=8, help="first size; doubled each run")
    parser.add_argument("--per-node", type=float, default=4.0, help="arrivals per hour per node")
    parser.add_argument("--policy", default="ROUNDROBIN")
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds a run may take")
    parser.add_argument("--max-nodes", type=int, default=20000)
    args = parser.parse_args()
    print(f"{load_note()}; policy {args.policy}, speed {args.speed:g}, {args.hours:g} h of workload")
    print("| nodes | requests | instances | peak running | refused | wall (s) | worst lag (s) | p50 / p99 placement (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    nodes, largest = args.nodes, None
    while nodes <= args.max_nodes:
        try:
            f = one(nodes, args.per_node, args.policy, args.speed, args.hours)
        except Exception as exc:  # noqa: BLE001 - the size that fails is the answer
            print(f"| {nodes} | failed: {exc} |", flush=True)
            break
        print(f"| {nodes} | {f['requests']:.0f} | {f['instances']:.0f} | {f['peak_running']:.0f} | {f['refused']:.0f} "
              f"| {f['wall_s']:.0f} | {f['lag_s']:.1f} | {f['p50']:.3f} / {f['p99']:.3f} |", flush=True)
        if f["wall_s"] > args.budget:
            break
        largest = (nodes, f)
        nodes *= 2
    if largest:
        print(f"largest within {args.budget:.0f} s: {largest[0]} nodes, {largest[1]['instances']:.0f} instances "
              f"({largest[1]['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
