"""Reconciliation with the hypervisor: running domains adopted after an NC restart (even when
the NC's database was lost), domains that die under a running instance noticed with a reason;
on each driver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.messages.node import ConsoleOutput
from tests.nc.conftest import Driver, run_request, start_node


@pytest.fixture(autouse=True)
def hypervisor_outlives_the_nc(driver: Driver) -> Iterator[None]:
    """The shared host (test:///default, fake:///shared) lives while any connection to it is
    open: holding one keeps its domains through an NC app stopping and starting, as libvirtd
    keeps guests running while the NC restarts."""
    connection = driver.open(driver.shared_uri, "keeper")
    yield
    connection.close()


def test_restarted_nc_adopts_domains_that_still_run(tmp_path: Path, driver: Driver) -> None:
    home = tmp_path / "adopt"
    with start_node(home, driver, HYPERVISOR_URI=driver.shared_uri) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        launched = node.instance(request.instance_id).launched_at

    with start_node(home, driver, HYPERVISOR_URI=driver.shared_uri) as node:
        again = node.wait_state(request.instance_id, "running")
        assert again.launched_at == launched
        console = node.call("GET", f"/internal/instances/{request.instance_id}/console", response=ConsoleOutput)
        assert "domain still running, adopted" in console.output
        assert console.output.count("started at") == 1          # adopted, not restarted
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")


def test_a_lost_database_is_rebuilt_from_our_domain_metadata(tmp_path: Path, driver: Driver) -> None:
    home = tmp_path / "lostdb"
    with start_node(home, driver, HYPERVISOR_URI=driver.shared_uri) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
    for leftover in home.glob("nc.db*"):
        leftover.unlink()

    with start_node(home, driver, HYPERVISOR_URI=driver.shared_uri) as node:
        adopted = node.wait_state(request.instance_id, "running")
        assert adopted.vm == request.vm and adopted.network == request.network
        assert node.resources().free.cores == node.resources().max.cores - request.vm.cpu
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")


def test_a_domain_dying_under_a_running_instance_is_reported(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "dies", driver) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        node.runtime.hypervisor.destroy(request.instance_id)       # as if the guest crashed
        final = node.wait_state(request.instance_id, "terminated")
        assert final.reason is not None and final.reason.code == "Server.InternalError"
        assert "shutoff" in final.reason.message
