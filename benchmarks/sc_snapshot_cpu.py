"""CPU of one snapshot in the SC and in Walrus, by thread, for the checkout in the current
directory: run it from another checkout to compare two versions of the code in the same
minutes, which is how a change's effect shows on a machine whose load moves by the minute.

    cd <checkout> && <venv>/bin/python <this file> [--runs 5] [--poll 0.25] [--part-mib N]

The same volume as benchmarks/sc_snapshot.py (10 GiB, 100 MiB of 1 MiB runs spread over it),
one snapshot after another (each deleted after), `cp` + `sync` of the same bytes before each.
Per snapshot: the CPU of each process (utime + stime, which counts threads that have ended:
an upload's part threads) and of each thread still alive at the end, by its Python name (from
`py-spy dump`, when py-spy is installed), and the wall time call → completed."""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path.cwd()
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(0, str(CHECKOUT / "benchmarks"))

import sc_snapshot as bench  # noqa: E402  (the checkout's own)
from services.ids import new_id  # noqa: E402
from services.messages.storage import (SC_SNAPSHOT_ROUTE, SC_VOLUMES_ROUTE, CreateVolume,  # noqa: E402
                                       VolumeInfo)
from tests.sc.process import sc_process, walrus_for_sc  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def thread_names(pid: int) -> dict[str, str]:
    """OS thread id -> Python thread name, for the threads alive now."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {}
    out = subprocess.run([spy, "dump", "--pid", str(pid), "--json"], capture_output=True,
                         text=True, check=False).stdout
    try:
        return {str(t["os_thread_id"]): t.get("thread_name") or "?" for t in json.loads(out)}
    except (ValueError, KeyError, TypeError):
        return {}


def by_thread(pid: int, names: dict[str, str]) -> collections.Counter[str]:
    seconds: collections.Counter[str] = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        name = re.sub(r"[_-]?\d+$", "", names.get(tid, "other"))
        seconds[name] += (int(fields[11]) + int(fields[12])) / TICK
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.25, help="DescribeSnapshot every this many s")
    parser.add_argument("--part-mib", type=int, default=None, help="SC_SNAPSHOT_PART_MIB (default: the checkout's)")
    args = parser.parse_args()
    settings = {"SC_SNAPSHOT_PART_MIB": str(args.part_mib)} if args.part_mib else {}
    with tempfile.TemporaryDirectory(prefix="sc-cpu-") as tmp:
        home = Path(tmp)
        with walrus_for_sc(home) as walrus, \
                sc_process(home / "sc", walrus, SC_MAX_STORAGE="30", **settings) as sc:
            assert sc.process is not None
            volume = new_id("vol")
            sc.call("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume, size_gib=10), VolumeInfo)
            flat = home / "data.bin"
            bench.fill(sc.volumes / f"{volume}.img", 10 * bench.GIB, 100, flat)
            bench.timed_cp(flat, home)
            # A first snapshot starts every thread pool, so that the names below cover them.
            _, first = bench.snapshot(sc, volume, every=args.poll)
            sc.call("DELETE", SC_SNAPSHOT_ROUTE.format(snapshot_id=first.snapshot_id))
            pids = {"sc": sc.process.pid, "walrus": walrus.pid}
            names = {k: thread_names(pid) for k, pid in pids.items()}
            totals = {k: collections.Counter[str]() for k in pids}
            walls, cps = [], []
            for _ in range(args.runs):
                cps.append(bench.timed_cp(flat, home))
                before = {k: (bench.cpu_seconds(pid), by_thread(pid, names[k])) for k, pid in pids.items()}
                elapsed, info = bench.snapshot(sc, volume, every=args.poll)
                for k, pid in pids.items():
                    totals[k]["(process)"] += bench.cpu_seconds(pid) - before[k][0]
                    after = by_thread(pid, names[k])
                    for name, value in after.items():
                        totals[k][name] += value - before[k][1].get(name, 0.0)
                walls.append(elapsed)
                sc.call("DELETE", SC_SNAPSHOT_ROUTE.format(snapshot_id=info.snapshot_id))
    for k, seconds in totals.items():
        ended = seconds["(process)"] - sum(v for n, v in seconds.items() if n != "(process)")
        if ended > 0.0005 * args.runs:
            seconds["threads that ended"] = ended
        parts = ", ".join(f"{name} {value / args.runs:.3f}" for name, value in seconds.most_common()
                          if name != "(process)" and value > 0)
        print(f"{k}: {seconds['(process)'] / args.runs:.3f} s CPU per snapshot ({parts})")
    print(f"snapshot {statistics.median(walls):.3f} s, cp {statistics.median(cps):.3f} s (medians); "
          f"load average {bench.load()}")


if __name__ == "__main__":
    main()
