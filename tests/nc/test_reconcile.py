"""Reconciliation with libvirt: running domains adopted after an NC restart (even when the NC's
database was lost), domains that die under a running instance noticed with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from services.messages.node import ConsoleOutput
from tests.nc.conftest import run_request, start_node

# test:///default is one hypervisor for the whole process, alive while any connection to it is
# open: holding one keeps its domains through an NC app stopping and starting, as libvirtd
# keeps guests running while the NC restarts.
SHARED = {"HYPERVISOR_URI": "test:///default"}


@pytest.fixture(autouse=True)
def hypervisor_outlives_the_nc() -> Iterator[None]:
    connection = libvirt.open("test:///default")
    yield
    connection.close()


def test_restarted_nc_adopts_domains_that_still_run(tmp_path: Path) -> None:
    home = tmp_path / "adopt"
    with start_node(home, **SHARED) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        launched = node.instance(request.instance_id).launched_at

    with start_node(home, **SHARED) as node:
        again = node.wait_state(request.instance_id, "running")
        assert again.launched_at == launched
        console = node.call("GET", f"/internal/instances/{request.instance_id}/console", response=ConsoleOutput)
        assert "domain still running, adopted" in console.output
        assert console.output.count("started at") == 1          # adopted, not restarted
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")


def test_a_lost_database_is_rebuilt_from_our_domain_metadata(tmp_path: Path) -> None:
    home = tmp_path / "lostdb"
    with start_node(home, **SHARED) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
    for leftover in home.glob("nc.db*"):
        leftover.unlink()

    with start_node(home, **SHARED) as node:
        adopted = node.wait_state(request.instance_id, "running")
        assert adopted.vm == request.vm and adopted.network == request.network
        assert node.resources().free.cores == node.resources().max.cores - request.vm.cpu
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")


def test_a_domain_dying_under_a_running_instance_is_reported(tmp_path: Path) -> None:
    with start_node(tmp_path / "dies") as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        node.runtime.hypervisor.destroy(request.instance_id)       # as if the guest crashed
        final = node.wait_state(request.instance_id, "terminated")
        assert final.reason is not None and final.reason.code == "Server.InternalError"
        assert "shutoff" in final.reason.message
