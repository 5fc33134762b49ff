"""Apply a plan from a file with the linux driver, in the network namespace this runs in:

    ip netns exec fe python -m cc.network.apply --state DIR --underlay 10.255.0.1 \
        --peer node-1=10.255.0.2 plan.json        (--teardown removes what it made)

What the CC's linux driver does on each change, runnable by hand to see one step alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cc.network.drivers import LinuxDriver
from services.messages.network import NetworkPlanView, NetworkSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cc.network.apply")
    parser.add_argument("plan", type=Path, nargs="?")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--underlay", required=True, help="this host's address on the wire")
    parser.add_argument("--peer", action="append", default=[], help="node=address")
    parser.add_argument("--settings", type=Path, help="NetworkSettings as JSON")
    parser.add_argument("--teardown", action="store_true")
    args = parser.parse_args(argv)
    settings = (NetworkSettings.model_validate_json(args.settings.read_text())
                if args.settings else NetworkSettings())
    driver = LinuxDriver(args.state, args.underlay, settings)
    if args.teardown:
        done = driver.teardown()
    else:
        if args.plan is None:
            parser.error("a plan file is needed unless --teardown")
        plan = NetworkPlanView.model_validate_json(args.plan.read_text())
        peers = dict(p.split("=", 1) for p in args.peer)
        done = driver.apply(plan, settings, peers)
    for line in done:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
