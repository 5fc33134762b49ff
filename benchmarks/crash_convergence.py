"""How long the cloud takes to agree with itself again after a service dies under load: for
each service (Walrus, SC, CC, NC, CLC) the mixed workload of tests/hardening/test_crashes.py
runs while the service is killed with SIGKILL and started again on its port and state; the
time is from the restarted service answering its health check until what the CLC reports
matches what the CC's nodes and the SC hold (tests/hardening/crash_support.py `differences`).
The peer, in the same run on the same cloud: the same service stopped cleanly (SIGTERM).

    .venv/bin/python benchmarks/crash_convergence.py [--runs 2] [--readme]"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.support import load_note, main_guard  # noqa: E402
from tests.hardening.crash_support import check, crash_and_restart, end_instances, prepare  # noqa: E402
from tests.support.cloud import running_cloud  # noqa: E402

SERVICES = ("walrus", "sc", "cc", "nc", "clc")


def main() -> None:
    main_guard()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--readme", action="store_true", help="rewrite the crash section of benchmarks/README.md")
    args = parser.parse_args()
    times: dict[tuple[str, bool], list[float]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eucasim-crash-") as home, \
            running_cloud(Path(home), nodes=2, VNET_PUBLICIPS="10.111.230.1-10.111.230.20",
                          SC_MAX_STORAGE=200) as cloud:
        image, address, zone = prepare(cloud)
        for _ in range(args.runs):
            for service in SERVICES:
                for graceful in (False, True):
                    ledger, seconds = crash_and_restart(cloud, service, image, address, zone,
                                                        graceful=graceful)
                    check(cloud, ledger)
                    end_instances(cloud, ledger)
                    times.setdefault((service, graceful), []).append(seconds)
                    print(f"{service:7} {'SIGTERM' if graceful else 'SIGKILL'}: converged in "
                          f"{seconds:.2f} s", flush=True)
        note = load_note()
    rows = ["| service | SIGKILL: median (max) s | SIGTERM, the peer: median (max) s | within 10 s? |",
            "|---|---:|---:|---|"]
    for service in SERVICES:
        kill, term = times[(service, False)], times[(service, True)]
        rows.append(f"| {service} | {statistics.median(kill):.2f} ({max(kill):.2f}) | "
                    f"{statistics.median(term):.2f} ({max(term):.2f}) | "
                    f"{'yes' if max(kill) <= 10 else 'no'} |")
    table = "\n".join(rows)
    print(table)
    print(f"{args.runs} run(s) of each, {time.monotonic() - started:.0f} s in all; {note}")
    if args.readme:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        section = (f"<!-- crash:start -->\n## Convergence after a crash (issue 13)\n\nCommand: "
                   "`.venv/bin/python benchmarks/crash_convergence.py --readme`\n\n"
                   "Seconds from the restarted service answering until the CLC's view (instances, "
                   "attachments, volumes, exports, snapshots) matches the CC's nodes and the SC, "
                   "with nothing in a transitional state, the mixed workload of "
                   "`tests/hardening/test_crashes.py` having run across the crash; every "
                   "acknowledged object, volume, snapshot and instance checked afterwards. "
                   f"{args.runs} run(s) each, {note}.\n\n{table}\n<!-- crash:end -->")
        if "<!-- crash:start -->" in text:
            text = re.sub(r"<!-- crash:start -->.*?<!-- crash:end -->", lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        readme.write_text(text)


if __name__ == "__main__":
    main()
