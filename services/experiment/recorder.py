"""The time series of one run: at each event time (before the events at that time happen)
and at the end, what the cloud holds. Times are workload seconds; the CC's view of its nodes
gives cores and memory booked per node and which nodes are awake."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from services.messages.cluster import NodeInfo


@dataclass(frozen=True)
class Sample:
    t: float
    running: int                 # instances the replayer started and has not terminated
    refused: int                 # instances refused or failed so far
    awake: int                   # nodes up (not asleep, not down)
    down: int
    booked_cores: tuple[int, ...]    # per node, registration order
    booked_memory_mb: tuple[int, ...]
    max_cores: tuple[int, ...]
    awake_cores: int = 0             # the cores of the nodes awake: what utilization divides by


def sample_of(t: float, running: int, refused: int, nodes: list[NodeInfo]) -> Sample:
    ordered = sorted(nodes, key=lambda n: n.position)
    booked = tuple((n.max.cores - n.free.cores) if n.max and n.free else 0 for n in ordered)
    memory = tuple((n.max.memory_mb - n.free.memory_mb) if n.max and n.free else 0 for n in ordered)
    maxes = tuple(n.max.cores if n.max else 0 for n in ordered)
    awake_cores = sum(n.max.cores for n in ordered if n.state == "up" and n.max)
    return Sample(t, running, refused, sum(1 for n in ordered if n.state == "up"),
                  sum(1 for n in ordered if n.state == "down"), booked, memory, maxes, awake_cores)


@dataclass
class Recording:
    policy: str
    nodes: int
    samples: list[Sample] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)   # real seconds, RunInstances to running
    lag_s: float = 0.0               # how far behind its schedule the replay fell, at worst (real s)
    nodes_used: set[int] = field(default_factory=set)    # positions that ever had cores booked
    refusals: Counter[str] = field(default_factory=Counter)   # error code -> instances refused

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        self.nodes_used.update(i for i, c in enumerate(sample.booked_cores) if c > 0)

    def overbooked(self) -> list[tuple[float, int, int, int]]:
        """(t, node position, booked, max) wherever a node held more cores than it has."""
        return [(s.t, i, b, s.max_cores[i]) for s in self.samples
                for i, b in enumerate(s.booked_cores) if b > s.max_cores[i]]

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["t_s", "running", "refused", "awake", "down", "booked_cores", "booked_memory_mb",
                             "booked_cores_per_node"])
            for s in self.samples:
                writer.writerow([f"{s.t:g}", s.running, s.refused, s.awake, s.down, sum(s.booked_cores),
                                 sum(s.booked_memory_mb), " ".join(map(str, s.booked_cores))])
