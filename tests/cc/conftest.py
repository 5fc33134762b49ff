"""Fixtures: a zone of three simulated nodes (MAX_CORES 2, 4 and 8; MAX_MEM above this host's
memory) in one real NC process, and a real CC process polling them every 0.2 s.

The NC process is shared by the tests (a cold start is the slowest part of a
test) and emptied and woken between tests; a test that kills its NC asks for its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.internal import InternalClient
from services.messages.node import InstanceList, NodeResources
from tests.cc.cc_process import start_cc, wait_for
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


def empty_nodes(nc: NcProcess) -> None:
    """Terminate every instance and wake every node, straight through the NC API."""
    clients = [InternalClient(url, SECRET) for url in nc.node_urls]
    try:
        for client in clients:
            for report in client.call("GET", "/internal/instances", response=InstanceList).instances:
                if report.state not in ("terminated", "shutting-down"):
                    client.call("POST", f"/internal/instances/{report.instance_id}/terminate")
            if client.call("GET", "/internal/resources", response=NodeResources).power == "asleep":
                client.call("POST", "/internal/power/wake")

        def all_free() -> bool:
            figures = [c.call("GET", "/internal/resources", response=NodeResources) for c in clients]
            return all(f.free == f.max and f.power == "awake" for f in figures)

        wait_for(all_free, 30, "the shared NC's nodes to be empty")
    finally:
        for client in clients:
            client.close()


@pytest.fixture(scope="session")
def shared_nc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NcProcess]:
    nc = new_nc(tmp_path_factory.mktemp("shared-nc"))
    nc.start()
    yield nc
    nc.stop()


@pytest.fixture
def zone_factory(tmp_path: Path, shared_nc: NcProcess) -> Iterator[Callable[..., tuple[Zone, NcProcess]]]:
    own: list[NcProcess] = []
    zones: list[Zone] = []
    used_shared = False

    def make(policy: str = "ROUNDROBIN", nodes: bool = True, own_nc: bool = False,
             **cc_settings: object) -> tuple[Zone, NcProcess]:
        nonlocal used_shared
        nc = new_nc(tmp_path) if own_nc else shared_nc
        used_shared = used_shared or not own_nc
        settings = {"SCHEDPOLICY": policy, "NC_POLLING_FREQUENCY": POLL, **cc_settings}
        if nodes:
            settings["NODES"] = " ".join(nc.node_urls)
        # An own NC starts while the CC does: two cold Python starts side by side.
        cc = start_cc(tmp_path / "cc", SECRET, wait=False, **settings)  # type: ignore[arg-type]
        zone = Zone(cc, list(NODE_NAMES))
        zones.append(zone)  # zone.cc may be replaced by restart_cc: stop whichever is current
        if own_nc:
            own.append(nc)
            nc.start()
        cc.wait_healthy()
        if nodes:
            zone.wait_states(dict.fromkeys(NODE_NAMES, "up"))
        return zone, nc

    try:
        yield make
    finally:
        for zone in zones:
            zone.cc.stop()
        for nc in own:
            nc.stop()
        if used_shared:
            empty_nodes(shared_nc)


def restart_cc(zone: Zone, **settings: object) -> None:
    """Stop the zone's CC and start a new one on the same home (database)."""
    old = zone.cc
    old.stop()
    zone.cc = start_cc(old.home, SECRET, **{**old.settings, **settings})  # type: ignore[arg-type]
