"""The Azure public VM trace (AzurePublicDatasetV1/V2 `vmtable.csv`, no header) as a workload.

Its columns, in order: vm id, subscription id, deployment id, timestamp created, timestamp
deleted (seconds from the trace's start), max CPU, avg CPU, p95 max CPU, VM category, core
count bucket ("2", "4", …, ">24"), memory bucket in GB ("2", …, ">64"). Each VM becomes one
request of the smallest instance type whose cores and memory cover its buckets (the largest
type when none does), arriving at its creation and lasting until its deletion; VMs created
before `start_s` or after `start_s + hours` are left out, and times are shifted to start at 0."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from services.experiment.workload import Request, WorkloadError

# (name, cores, memory MB) of eucasim's default VM types, smallest first (clc/models/vmtypes.py).
TYPES: list[tuple[str, int, int]] = [("m1.small", 1, 256), ("m1.large", 2, 512),
                                     ("m1.xlarge", 2, 1024), ("c1.xlarge", 4, 2048)]


def _bucket(value: str) -> float:
    value = value.strip()
    return float(value.lstrip(">")) + (1 if value.startswith(">") else 0)


def instance_type_for(cores: float, memory_gb: float, scale: float = 1.0) -> str:
    """`scale` shrinks Azure's sizes onto eucasim's small types (cores / scale)."""
    need_cores, need_mb = cores / scale, memory_gb * 1024 / scale
    for name, type_cores, type_mb in TYPES:
        if type_cores >= need_cores and type_mb >= need_mb:
            return name
    return TYPES[-1][0]


def read_azure(path: Path, start_s: float = 0.0, hours: float = 24.0, scale: float = 4.0,
               limit: int | None = None) -> list[Request]:
    return sorted(_rows(path, start_s, start_s + hours * 3600.0, scale, limit))


def _rows(path: Path, start: float, end: float, scale: float, limit: int | None) -> Iterator[Request]:
    taken = 0
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if len(row) < 11:
                raise WorkloadError(f"{path}:{number}: an Azure vmtable row has 11 columns, this one {len(row)}")
            try:
                created, deleted = float(row[3]), float(row[4])
                cores, memory = _bucket(row[9]), _bucket(row[10])
            except ValueError:
                raise WorkloadError(f"{path}:{number}: timestamps and buckets must be numbers") from None
            if not start <= created < end or deleted <= created:
                continue
            yield Request(created - start, deleted - created, instance_type_for(cores, memory, scale))
            taken += 1
            if limit is not None and taken >= limit:
                return
