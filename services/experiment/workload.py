"""Workloads: a CSV of `arrival_s,duration_s,instance_type,count` rows (times in workload
seconds from the start), and a generator of synthetic ones.

The generator draws Poisson arrivals (exponential gaps) whose rate follows a diurnal sine, a
mix of instance types and exponential lifetimes, all from one seeded `random.Random`, so a
seed names one workload. Arrival times are rounded to `tick_s`: every gap between two events
is then a multiple of the tick, which keeps events clear of the cloud's scaled timers (an
idle threshold of 270 s is never met by a 300 s gap and a 240 s one alike by chance)."""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HEADER = ("arrival_s", "duration_s", "instance_type", "count")
DEFAULT_MIX: dict[str, float] = {"m1.small": 0.6, "m1.large": 0.3, "c1.xlarge": 0.1}


class WorkloadError(ValueError):
    """A workload file or option that cannot be used; the message says where and why."""


@dataclass(frozen=True, order=True)
class Request:
    arrival_s: float
    duration_s: float
    instance_type: str = field(compare=False)
    count: int = field(default=1, compare=False)

    @property
    def departure_s(self) -> float:
        return self.arrival_s + self.duration_s


def read_csv(path: Path) -> list[Request]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkloadError(f"{path}: {exc.strerror}") from None
    return parse_csv(text, str(path))


def parse_csv(text: str, where: str = "workload") -> list[Request]:
    rows = csv.reader(io.StringIO(text))
    requests: list[Request] = []
    for number, row in enumerate(rows, start=1):
        if not row or row[0].startswith("#"):
            continue
        if number == 1 and row[0].strip() == HEADER[0]:
            if tuple(c.strip() for c in row) != HEADER:
                raise WorkloadError(f"{where}:1: the header must be {','.join(HEADER)}")
            continue
        if len(row) != 4:
            raise WorkloadError(f"{where}:{number}: expected 4 columns ({','.join(HEADER)}), got {len(row)}")
        try:
            arrival, duration, count = float(row[0]), float(row[1]), int(row[3])
        except ValueError:
            raise WorkloadError(f"{where}:{number}: arrival_s and duration_s must be numbers, count a whole number") from None
        if arrival < 0 or duration <= 0 or count < 1 or not row[2].strip():
            raise WorkloadError(f"{where}:{number}: need arrival_s >= 0, duration_s > 0, count >= 1 and an instance_type")
        requests.append(Request(arrival, duration, row[2].strip(), count))
    return sorted(requests)


def to_csv(requests: Iterable[Request]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for r in requests:
        writer.writerow((f"{r.arrival_s:g}", f"{r.duration_s:g}", r.instance_type, r.count))
    return out.getvalue()


@dataclass(frozen=True)
class Shape:
    """What the generator draws from."""
    hours: float = 1.0
    arrivals_per_hour: float = 30.0         # mean over a day; the diurnal sine moves around it
    mean_duration_s: float = 1200.0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    diurnal: float = 0.5                    # amplitude: 0 flat, 1 from nothing at night to double at noon
    peak_hour: float = 14.0
    max_count: int = 1                      # each request asks for 1..max_count instances
    tick_s: float = 60.0


def _rate(shape: Shape, t: float) -> float:
    hour = (t / 3600.0) % 24
    return shape.arrivals_per_hour / 3600.0 * (1 + shape.diurnal * math.cos(2 * math.pi * (hour - shape.peak_hour) / 24))


def generate(seed: int, shape: Shape = Shape()) -> list[Request]:
    """A Poisson process thinned to the diurnal rate (Lewis–Shedler), in one seeded stream."""
    if shape.arrivals_per_hour <= 0 or shape.hours <= 0 or shape.mean_duration_s <= 0:
        raise WorkloadError("the generator needs hours, arrivals_per_hour and mean_duration_s above 0")
    if not shape.mix or any(w < 0 for w in shape.mix.values()) or sum(shape.mix.values()) <= 0:
        raise WorkloadError("the type mix needs at least one type with a positive weight")
    rng = random.Random(seed)
    types, weights = list(shape.mix), list(shape.mix.values())
    peak = shape.arrivals_per_hour / 3600.0 * (1 + abs(shape.diurnal))
    end = shape.hours * 3600.0
    tick = shape.tick_s if shape.tick_s > 0 else 1e-9
    t = 0.0
    requests: list[Request] = []
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            break
        if rng.random() * peak > _rate(shape, t):
            continue
        arrival = round(t / tick) * tick
        duration = max(tick, round(rng.expovariate(1 / shape.mean_duration_s) / tick) * tick)
        requests.append(Request(arrival, duration, rng.choices(types, weights)[0],
                                rng.randint(1, max(1, shape.max_count))))
    return sorted(requests)


def parse_mix(text: str) -> dict[str, float]:
    """"m1.small=0.6,m1.large=0.4" -> {type: weight}."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight) if sep else 1.0
        except ValueError:
            raise WorkloadError(f"--mix: {part!r} is not TYPE=WEIGHT") from None
    return mix
