"""Fixtures: a zone of three simulated nodes (MAX_CORES 2, 4 and 8; MAX_MEM above this host's
memory) in one real NC process, and a real CC process polling them every 0.2 s."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cc.cc_process import start_cc
from tests.cc.zone import Zone
from tests.support.nc_process import NcProcess

SECRET = "cc-test-secret"
CORES = [2, 4, 8]
NODE_NAMES = ["node-1", "node-2", "node-3"]
POLL = 0.2
# Above this machine's memory on purpose: MAX_MEM overcommits, and cores are what binds.
MAX_MEM = 256 * 1024


def new_nc(home: Path) -> NcProcess:
    return NcProcess(home / "nc", SECRET, nodes=len(CORES), max_cores_per_node=CORES,
                     max_mem=MAX_MEM, max_disk=100_000)


@pytest.fixture
def zone_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[Zone, NcProcess]]]:
    started: list[NcProcess] = []
    zones: list[Zone] = []

    def make(policy: str = "ROUNDROBIN", nodes: bool = True, **cc_settings: object) -> tuple[Zone, NcProcess]:
        nc = new_nc(tmp_path)
        settings = {"SCHEDPOLICY": policy, "NC_POLLING_FREQUENCY": POLL, **cc_settings}
        if nodes:
            settings["NODES"] = " ".join(nc.node_urls)
        # The CC starts while the NC does: two cold Python starts side by side.
        cc = start_cc(tmp_path / "cc", SECRET, wait=False, **settings)  # type: ignore[arg-type]
        zone = Zone(cc, list(NODE_NAMES))
        zones.append(zone)  # zone.cc may be replaced by restart_cc: stop whichever is current
        started.append(nc)
        nc.start()
        cc.wait_healthy()
        if nodes:
            zone.wait_states(dict.fromkeys(NODE_NAMES, "up"))
        return zone, nc

    yield make
    for zone in zones:
        zone.cc.stop()
    for process in started:
        process.stop()


def restart_cc(zone: Zone, **settings: object) -> None:
    """Stop the zone's CC and start a new one on the same home (database)."""
    old = zone.cc
    old.stop()
    zone.cc = start_cc(old.home, SECRET, **{**old.settings, **settings})  # type: ignore[arg-type]
