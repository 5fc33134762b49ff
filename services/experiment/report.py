"""From recordings to the table and the plots. Every column but the placement times is
computed from samples taken at workload times on a settled cloud; the placement times are
measured (real seconds) and are left out of `reproducible()`, the part of a row the same seed
must give again (the time-weighted columns only approximately: see there)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from services.experiment.recorder import Recording, Sample


@dataclass(frozen=True)
class Summary:
    policy: str
    refused: int
    mean_awake: float
    peak_awake: int
    nodes_used: int
    node_hours: float
    mean_utilization: float          # booked cores / cores of the nodes awake, time-weighted
    peak_running: int
    overbooked: int                  # samples × nodes over their cores: must be 0
    p50_placement_s: float           # measured
    p99_placement_s: float           # measured

    def reproducible(self) -> dict[str, object]:
        """The row without the measured placement times: what the same seed gives again.
        The counted columns (refused, peak_awake, nodes_used, peak_running, overbooked) come
        back the same to the letter; the time-weighted ones (mean_awake, node_hours,
        mean_utilization) integrate when the CC put nodes to sleep and woke them, on its own
        clock, so a busy host moves them a little (0.87 against 0.88 awake at --speed 120)
        and they are compared approximately: within 10% (or 0.05), as
        tests/experiment/test_compare.py does."""
        row = asdict(self)
        del row["p50_placement_s"], row["p99_placement_s"]
        return row


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _steps(samples: list[Sample]) -> list[tuple[Sample, float]]:
    """Each sample with how long (workload s) its state held: until the next sample."""
    return [(s, samples[i + 1].t - s.t) for i, s in enumerate(samples[:-1])]


def summarize(recording: Recording) -> Summary:
    samples = recording.samples
    steps = _steps(samples)
    span = sum(d for _, d in steps)
    awake_s = sum(s.awake * d for s, d in steps)
    util_num = sum((sum(s.booked_cores) / s.awake_cores if s.awake_cores else 0.0) * d for s, d in steps)
    return Summary(
        policy=recording.policy,
        refused=samples[-1].refused if samples else 0,
        mean_awake=round(awake_s / span, 2) if span else float(samples[-1].awake if samples else 0),
        peak_awake=max((s.awake for s in samples), default=0),
        nodes_used=len(recording.nodes_used),
        node_hours=round(awake_s / 3600.0, 2),
        mean_utilization=round(util_num / span, 3) if span else 0.0,
        peak_running=max((s.running for s in samples), default=0),
        overbooked=len(recording.overbooked()),
        p50_placement_s=_percentile(recording.latencies_s, 0.5),
        p99_placement_s=_percentile(recording.latencies_s, 0.99))


def table(summaries: list[Summary], title: str = "") -> Table:
    out = Table(title=title or None)
    for header in ("policy", "refused", "mean awake", "peak awake", "nodes used", "node-hours",
                   "mean util.", "peak running", "overbooked", "p50 place (s)", "p99 place (s)"):
        out.add_column(header, justify="left" if header == "policy" else "right")
    for s in summaries:
        out.add_row(s.policy, str(s.refused), f"{s.mean_awake:.2f}", str(s.peak_awake), str(s.nodes_used),
                    f"{s.node_hours:.2f}", f"{s.mean_utilization:.1%}", str(s.peak_running), str(s.overbooked),
                    f"{s.p50_placement_s:.3f}", f"{s.p99_placement_s:.3f}")
    return out


def plot(recordings: list[Recording], folder: Path) -> list[Path]:
    """running.png and awake.png: one line per policy over workload time (hours)."""
    import matplotlib
    matplotlib.use("Agg")       # no display: files only
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, label, value in (("running.png", "instances running", lambda s: s.running),
                               ("awake.png", "nodes awake", lambda s: s.awake)):
        figure, axes = plt.subplots(figsize=(8, 4))
        for recording in recordings:
            axes.step([s.t / 3600 for s in recording.samples], [value(s) for s in recording.samples],
                      where="post", label=recording.policy)
        axes.set_xlabel("workload time (h)")
        axes.set_ylabel(label)
        axes.legend()
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
        written.append(folder / name)
    return written
