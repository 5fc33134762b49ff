"""Real NC processes: one process serving three simulated nodes of different MAX_CORES, and an
NC killed with SIGKILL that comes back with its instances (the test hypervisor forgot them, as
after a host reboot, so they are restarted)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.internal import InternalCallError, InternalClient
from services.messages.node import (NC_DESCRIBE_ROUTE, ConsoleOutput, DescribeNodes, InstanceList,
                                    InstanceReport, NodeDirectory, NodeProcessReport, NodeResources)
from tests.nc.conftest import C1_XLARGE, M1_SMALL, SECRET, run_request, wait_for
from tests.support.nc_process import NcProcess, nc_process


@pytest.fixture
def zone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NcProcess]:
    """One NC process, three simulated nodes with MAX_CORES 2, 4 and 8 and MAX_MEM above the
    host's memory. Each test has its own: one counts on empty nodes, the other kills the NC
    and leaves instances running."""
    with nc_process(tmp_path_factory.mktemp("zone"), SECRET, nodes=3, max_cores_per_node=[2, 4, 8],
                    max_mem=10_000_000) as nc:
        yield nc


def _state(client: InternalClient, instance_id: str) -> str | None:
    listing = client.call("GET", "/internal/instances", response=InstanceList)
    return next((i.state for i in listing.instances if i.instance_id == instance_id), None)


def _wait_running(client: InternalClient, *ids: str) -> None:
    for instance_id in ids:
        wait_for(lambda iid=instance_id: _state(client, iid) == "running", 20, f"{instance_id} running")


def test_one_process_three_nodes_of_different_sizes(zone: NcProcess) -> None:
    nc = zone
    root = InternalClient(nc.url, SECRET)
    directory = root.call("GET", "/internal/nodes", response=NodeDirectory)
    assert [(n.node_id, n.prefix) for n in directory.nodes] == [
        ("node-1", "/node-1"), ("node-2", "/node-2"), ("node-3", "/node-3")]

    clients = [InternalClient(url, SECRET) for url in nc.node_urls]
    figures = [c.call("GET", "/internal/resources", response=NodeResources) for c in clients]
    assert [f.node_id for f in figures] == ["node-1", "node-2", "node-3"]
    assert [f.max.cores for f in figures] == [2, 4, 8]
    assert all(f.max.memory_mb == 10_000_000 > f.host.memory_mb for f in figures)
    assert len({f.hypervisor for f in figures}) == 3      # a private libvirt per node

    # A c1.xlarge (4 cores) fits node-2 and node-3 but not node-1.
    with pytest.raises(InternalCallError) as small_node:
        clients[0].call("POST", "/internal/instances", run_request(vm=C1_XLARGE))
    assert small_node.value.status == 409
    big = run_request(vm=C1_XLARGE)
    clients[2].call("POST", "/internal/instances", big, InstanceReport)
    _wait_running(clients[2], big.instance_id)

    # Nodes do not see each other's instances or bookings.
    assert clients[1].call("GET", "/internal/instances", response=InstanceList).instances == []
    after = [c.call("GET", "/internal/resources", response=NodeResources) for c in clients]
    assert [a.free.cores for a in after] == [2, 4, 4]


def test_sigkilled_nc_comes_back_with_its_instances(zone: NcProcess) -> None:
    nc = zone
    one, two = (InternalClient(url, SECRET) for url in nc.node_urls[1:])
    a, b, gone = run_request(vm=M1_SMALL), run_request(vm=M1_SMALL), run_request(vm=M1_SMALL)
    one.call("POST", "/internal/instances", a)
    one.call("POST", "/internal/instances", gone)
    two.call("POST", "/internal/instances", b)
    _wait_running(one, a.instance_id, gone.instance_id)
    _wait_running(two, b.instance_id)
    one.call("POST", f"/internal/instances/{gone.instance_id}/terminate")
    wait_for(lambda: _state(one, gone.instance_id) == "terminated", 20, "terminated")
    before = [one.call("GET", "/internal/resources", response=NodeResources).free,
              two.call("GET", "/internal/resources", response=NodeResources).free]

    nc.kill()
    with pytest.raises(httpx.TransportError):
        one.call("GET", "/internal/instances")
    nc.start()

    _wait_running(one, a.instance_id)
    _wait_running(two, b.instance_id)
    assert _state(one, gone.instance_id) == "terminated"
    # The restart happens in the background: wait until the console tells of a second start.
    def console() -> str:
        return one.call("GET", f"/internal/instances/{a.instance_id}/console", response=ConsoleOutput).output
    text = wait_for(lambda: (t := console()).count("started at") == 2 and t, 20, "second start")
    assert text.index("domain gone after the NC restarted") < text.rindex(f"domain {a.instance_id} started at")
    after = [one.call("GET", "/internal/resources", response=NodeResources).free,
             two.call("GET", "/internal/resources", response=NodeResources).free]
    assert after == before


def test_one_describe_covers_every_node_of_the_process(zone: NcProcess) -> None:
    root = InternalClient(zone.url, SECRET)
    report = root.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
    assert [n.prefix for n in report.nodes] == ["/node-1", "/node-2", "/node-3"]
    for status, url in zip(report.nodes, zone.node_urls, strict=True):
        client = InternalClient(url, SECRET)
        assert status.resources == client.call("GET", "/internal/resources", response=NodeResources)
        listing = client.call("GET", "/internal/instances", response=InstanceList)
        assert [i.instance_id for i in status.instances] == [i.instance_id for i in listing.instances]
        client.close()
    root.close()
