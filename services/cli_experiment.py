"""`eucasim experiment`: run a workload through a private simulated cloud under one policy
(`run`) or under each policy (`compare`), print the table and write plots and time series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from services.config import SCHED_POLICIES
from services.experiment.azure import read_azure
from services.experiment.cloud import NodeShape
from services.experiment.report import plot, summarize, table
from services.experiment.run import run_one
from services.experiment.schedule import ScheduledFault, parse_fault
from services.experiment.timescale import TimeScale
from services.experiment.workload import Request, Shape, WorkloadError, generate, parse_mix, read_csv, to_csv

experiment_app = typer.Typer(help="Replay a workload through the real API and compare scheduling policies.",
                             no_args_is_help=True)
out = Console()
if not out.is_terminal:
    out = Console(width=160)     # the table's eleven columns, whole, in a file or a pipe
err = Console(stderr=True)

# The policies `compare` runs when none is named (any of SCHED_POLICIES may be asked for).
DEFAULT_POLICIES = ("GREEDY", "ROUNDROBIN", "POWERSAVE")

Workload = Annotated[Optional[Path], typer.Argument(help="CSV: arrival_s,duration_s,instance_type,count.")]
Nodes = Annotated[int, typer.Option("--nodes", min=1, help="Simulated nodes.")]
NodeShapeOpt = Annotated[str, typer.Option("--node-shape", help="CORES,MEM_MB,DISK_GB of each node.")]
Speed = Annotated[float, typer.Option("--speed", help="Workload seconds per real second.")]
Generate = Annotated[bool, typer.Option("--generate", help="Use a synthetic workload in place of a file.")]
Seed = Annotated[int, typer.Option("--seed", help="The generator's seed.")]
Hours = Annotated[float, typer.Option("--hours", help="Generator: workload length.")]
Rate = Annotated[float, typer.Option("--rate", help="Generator: mean arrivals per hour.")]
Lifetime = Annotated[float, typer.Option("--lifetime", help="Generator: mean instance lifetime (s).")]
Mix = Annotated[str, typer.Option("--mix", help="Generator: TYPE=WEIGHT,…")]
Faults = Annotated[list[str], typer.Option("--fault", help="KIND:TARGET@T[s][+D[s]], e.g. node-down:node-3@120s.")]
Output = Annotated[Path, typer.Option("--out", help="Folder for plots, time series and the table (JSON).")]


def _workload(path: Path | None, generate_it: bool, seed: int, hours: float, rate: float, lifetime: float,
              mix: str) -> list[Request]:
    if generate_it == (path is not None):
        raise WorkloadError("give a WORKLOAD file or --generate, one of the two")
    if path is not None:
        return read_csv(path)
    shape = Shape(hours=hours, arrivals_per_hour=rate, mean_duration_s=lifetime,
                  **({"mix": parse_mix(mix)} if mix else {}))
    return generate(seed, shape)


def _fault_hooks():  # type: ignore[no-untyped-def]
    from services.cli_fault import hook_for
    return hook_for


def _compare(workload: list[Request], policies: list[str], nodes: int, node_shape: str, speed: float,
             faults: list[str], output: Path) -> None:
    try:
        shape = NodeShape.parse(node_shape)
        scale = TimeScale(speed)
        scheduled: list[ScheduledFault] = [parse_fault(f) for f in faults]
        unknown = [p for p in policies if p not in SCHED_POLICIES]
        if unknown:
            raise ValueError(f"--policy {', '.join(unknown)}: not a scheduling policy ({', '.join(SCHED_POLICIES)})")
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    output.mkdir(parents=True, exist_ok=True)
    (output / "workload.csv").write_text(to_csv(workload))
    recordings = []
    for policy in policies:
        err.print(f"[dim]{policy}: {len(workload)} requests on {nodes} nodes at speed {speed:g}…[/dim]")
        recording = run_one(workload, policy, nodes, shape, scale, scheduled,
                            _fault_hooks() if scheduled else None)
        recording.write_csv(output / f"series-{policy}.csv")
        recordings.append(recording)
    summaries = [summarize(r) for r in recordings]
    for recording in recordings:
        if recording.refusals:
            err.print(f"{recording.policy} refused: " + ", ".join(f"{n} {code}" for code, n in recording.refusals.most_common()))
    out.print(table(summaries, f"{len(workload)} requests, {nodes} nodes of {node_shape}, speed {speed:g}"))
    (output / "table.json").write_text(json.dumps([s.reproducible() for s in summaries], indent=1) + "\n")
    written = plot(recordings, output)
    err.print(f"plots: {', '.join(str(p) for p in written)}; time series and table.json in {output}")


@experiment_app.command()
def run(workload: Workload = None, nodes: Nodes = 4, node_shape: NodeShapeOpt = "8,16384,500",
        policy: Annotated[str, typer.Option("--policy")] = "ROUNDROBIN", speed: Speed = 60.0,
        generate_it: Generate = False, seed: Seed = 1, hours: Hours = 1.0, rate: Rate = 30.0,
        lifetime: Lifetime = 1200.0, mix: Mix = "", fault: Faults = [],  # noqa: B006 (typer)
        output: Output = Path("experiment-out")) -> None:
    """Replay WORKLOAD (or a generated one) under one policy."""
    try:
        requests = _workload(workload, generate_it, seed, hours, rate, lifetime, mix)
    except WorkloadError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    _compare(requests, [policy.upper()], nodes, node_shape, speed, fault, output)


@experiment_app.command()
def compare(workload: Workload = None, nodes: Nodes = 4, node_shape: NodeShapeOpt = "8,16384,500",
            policy: Annotated[list[str], typer.Option("--policy", help="Repeat; default GREEDY, ROUNDROBIN, POWERSAVE.")] = [],  # noqa: B006
            speed: Speed = 60.0, generate_it: Generate = False, seed: Seed = 1, hours: Hours = 1.0,
            rate: Rate = 30.0, lifetime: Lifetime = 1200.0, mix: Mix = "",
            fault: Faults = [], output: Output = Path("experiment-out")) -> None:  # noqa: B006
    """Replay the same workload under each policy, one fresh cloud each; print the table."""
    try:
        requests = _workload(workload, generate_it, seed, hours, rate, lifetime, mix)
    except WorkloadError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    _compare(requests, [p.upper() for p in policy] or list(DEFAULT_POLICIES), nodes, node_shape, speed,
             fault, output)


@experiment_app.command("generate")
def generate_cmd(output: Annotated[Path, typer.Argument(help="Where to write the CSV.")], seed: Seed = 1,
                 hours: Hours = 1.0, rate: Rate = 30.0, lifetime: Lifetime = 1200.0, mix: Mix = "") -> None:
    """Write a synthetic workload CSV."""
    try:
        requests = _workload(None, True, seed, hours, rate, lifetime, mix)
    except WorkloadError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    output.write_text(to_csv(requests))
    out.print(f"{len(requests)} requests written to {output}")


@experiment_app.command("convert-azure")
def convert_azure(trace: Annotated[Path, typer.Argument(help="Azure vmtable.csv.")],
                  output: Annotated[Path, typer.Argument(help="Workload CSV to write.")],
                  start: Annotated[float, typer.Option(help="Trace second to start at.")] = 0.0,
                  hours: Hours = 24.0,
                  limit: Annotated[Optional[int], typer.Option(help="At most this many VMs.")] = None) -> None:
    """Convert the Azure public VM trace's vmtable.csv into a workload CSV."""
    try:
        requests = read_azure(trace, start, hours, limit=limit)
    except (WorkloadError, OSError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    output.write_text(to_csv(requests))
    out.print(f"{len(requests)} requests written to {output}")
