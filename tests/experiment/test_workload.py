"""Workloads without a cloud: the CSV reader's errors, the generator's determinism and shape,
the Azure converter, fault schedules and the time scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.experiment.azure import instance_type_for, read_azure
from services.experiment.schedule import ScheduledFault, parse_fault
from services.experiment.timescale import TimeScale
from services.experiment.workload import (Request, Shape, WorkloadError, generate, parse_csv, parse_mix,
                                          to_csv)


def test_csv_round_trip_sorted_by_arrival() -> None:
    text = "arrival_s,duration_s,instance_type,count\n120,60,m1.large,2\n0,300,m1.small,1\n"
    requests = parse_csv(text)
    assert requests == [Request(0, 300, "m1.small", 1), Request(120, 60, "m1.large", 2)]
    assert parse_csv(to_csv(requests)) == requests
    assert [r.instance_type for r in parse_csv(to_csv(requests))] == ["m1.small", "m1.large"]


@pytest.mark.parametrize("text, words", [
    ("0,60,m1.small\n", "expected 4 columns"),
    ("x,60,m1.small,1\n", "must be numbers"),
    ("0,0,m1.small,1\n", "duration_s > 0"),
    ("0,60,m1.small,0\n", "count >= 1"),
    ("arrival_s,count\n", "header"),
])
def test_csv_errors_name_the_line(text: str, words: str) -> None:
    with pytest.raises(WorkloadError, match=words) as caught:
        parse_csv(text, "w.csv")
    assert str(caught.value).startswith("w.csv:1:")


def test_generator_same_seed_same_workload_other_seed_other() -> None:
    shape = Shape(hours=6, arrivals_per_hour=40)
    assert generate(7, shape) == generate(7, shape)
    assert [(r.arrival_s, r.instance_type) for r in generate(7, shape)] != \
        [(r.arrival_s, r.instance_type) for r in generate(8, shape)]


def test_generator_ticks_mix_and_diurnal_load() -> None:
    shape = Shape(hours=24, arrivals_per_hour=60, mix={"m1.small": 1, "c1.xlarge": 0}, diurnal=0.9,
                  peak_hour=12, tick_s=60)
    requests = generate(3, shape)
    assert requests and all(r.arrival_s % 60 == 0 and r.duration_s % 60 == 0 for r in requests)
    assert {r.instance_type for r in requests} == {"m1.small"}
    by_hour = [sum(1 for r in requests if h * 3600 <= r.arrival_s < (h + 1) * 3600) for h in range(24)]
    noon, night = sum(by_hour[10:14]), sum(by_hour[0:2]) + sum(by_hour[22:24])
    assert noon > 3 * night      # rate at noon 1.9x the mean, at midnight 0.1x


def test_generator_and_mix_refuse_nonsense() -> None:
    with pytest.raises(WorkloadError):
        generate(1, Shape(mix={"m1.small": 0}))
    with pytest.raises(WorkloadError):
        parse_mix("m1.small=lots")
    assert parse_mix("m1.small=0.5, m1.large") == {"m1.small": 0.5, "m1.large": 1.0}


def test_azure_vmtable_rows_become_requests(tmp_path: Path) -> None:
    trace = tmp_path / "vmtable.csv"
    trace.write_text("\n".join([
        "vm1,sub,dep,300,900,90,20,80,Interactive,2,4",
        "vm2,sub,dep,0,86400,50,10,40,Delay-insensitive,>24,>64",
        "vm3,sub,dep,100000,100300,10,5,8,Unknown,2,2",    # after the window
        "vm4,sub,dep,600,600,10,5,8,Unknown,2,2",          # deleted as created: left out
    ]) + "\n")
    requests = read_azure(trace, start_s=0, hours=1, scale=4)
    assert requests == [Request(0, 86400, "c1.xlarge"), Request(300, 600, "m1.xlarge")]
    # >24 cores is bigger than any type: the largest; 2 cores 4 GB / 4 = 0.5 core, 1 GB: m1.xlarge
    assert [r.instance_type for r in requests] == ["c1.xlarge", "m1.xlarge"]
    assert instance_type_for(8, 2, scale=4) == "m1.large"
    (tmp_path / "bad.csv").write_text("vm1,sub,dep,300\n")
    with pytest.raises(WorkloadError, match="11 columns"):
        read_azure(tmp_path / "bad.csv")


def test_fault_schedule_and_time_scale() -> None:
    assert parse_fault("node-down:node-3@120s") == ScheduledFault("node-down", "node-3", 120.0)
    assert parse_fault("node-slow:node-1=2@60+600s") == ScheduledFault("node-slow", "node-1=2", 60.0, 600.0)
    with pytest.raises(ValueError, match="KIND:TARGET@SECONDS"):
        parse_fault("node-down@120")
    scale = TimeScale(600)
    assert scale.real(600) == 1.0
    settings = scale.settings()
    assert float(settings["POWER_IDLETHRESH"]) == pytest.approx(0.45)
    assert float(settings["NC_POLLING_FREQUENCY"]) == 0.1       # floor: MIN_POLL_S
    with pytest.raises(ValueError):
        TimeScale(0)
