"""What a node offers: MAX_CORES/MAX_MEM overcommitting the host, free going down and up with
instances, a full node refusing, foreign domains not counted, sleep and wake."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nc.domain_xml import DomainSpec
from services.internal import InternalCallError, InternalClient
from services.messages.node import InstanceList, NodeResources, RunInstance
from tests.nc.conftest import Driver, C1_XLARGE, M1_SMALL, SECRET, run_request, start_node


def test_max_cores_and_memory_overcommit_the_host(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "big", driver, MAX_CORES=8, MAX_MEM=10_000_000, MAX_DISK=500) as node:
        before = node.resources()
        assert before.max.cores == 8 and before.max.cores > before.host.cores
        assert before.max.memory_mb == 10_000_000 and before.max.memory_mb > before.host.memory_mb
        assert before.max.disk_gb == 500
        assert before.free == before.max and before.power == "awake"

        first, second = run_request(vm=C1_XLARGE), run_request(vm=C1_XLARGE)
        node.run(first)
        node.run(second)
        after = node.resources()
        # Booked at once (while still pending), disk including the 512 MB swap (rounded up to 1 GB).
        assert after.free.cores == 0
        assert after.free.memory_mb == 10_000_000 - 2 * 2048
        assert after.free.disk_gb == 500 - 2 * (20 + 1)

        with pytest.raises(InternalCallError) as full:
            node.run(run_request(vm=M1_SMALL))
        assert full.value.status == 409 and "InsufficientInstanceCapacity" in str(full.value.detail)

        node.wait_state(first.instance_id, "running")
        node.call("POST", f"/internal/instances/{first.instance_id}/terminate")
        node.wait_state(first.instance_id, "terminated")
        assert node.resources().free.cores == 4


def test_without_max_the_host_figures_are_the_maximum(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "plain", driver) as node:
        figures = node.resources()
        assert figures.max == figures.host
        assert figures.host.cores >= 1 and figures.host.memory_mb > 0 and figures.host.disk_gb > 0


def test_foreign_domains_are_left_alone_and_not_counted(tmp_path: Path, driver: Driver) -> None:
    # Beside ours on the shared host: a domain not named as an instance (test:///default comes
    # with its own `test` too) and an instance of another node.
    others = driver.open(driver.shared_uri, "someone-else")
    for name in ("manual-vm", "i-0000f00d"):
        others.define(DomainSpec(name=name, domain_type="test", vcpus=2, memory_mb=64, disks=(),
                                 console_log=tmp_path / f"{name}.log", mac="d0:0d:00:00:f0:0d",
                                 bridge="br0", metadata={"node": "someone-else"}))
        others.start(name)
    with start_node(tmp_path / "shared", driver, HYPERVISOR_URI=driver.shared_uri, MAX_CORES=4) as node:
        assert node.resources().free.cores == 4
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        listing = node.call("GET", "/internal/instances", response=InstanceList)
        assert [i.instance_id for i in listing.instances] == [request.instance_id]
        assert [d.name for d in node.runtime.hypervisor.list_ours()] == [request.instance_id]
        assert node.resources().free.cores == 3
        assert node.runtime.hypervisor.state("manual-vm") == "running"
        assert node.runtime.hypervisor.state("i-0000f00d") == "running"
    for name in ("manual-vm", "i-0000f00d"):
        others.destroy(name)
        others.undefine(name)
    others.close()


def test_simulated_node_sleeps_only_when_idle_and_refuses_work_asleep(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "sleepy", driver, MAX_CORES=2) as node:
        request = run_request()
        node.run(request)
        with pytest.raises(InternalCallError) as busy:
            node.call("POST", "/internal/power/sleep")
        assert busy.value.status == 409
        node.wait_state(request.instance_id, "running")
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")

        asleep = node.call("POST", "/internal/power/sleep", response=NodeResources)
        assert asleep.power == "asleep"
        with pytest.raises(InternalCallError) as refused:
            node.run(run_request())
        assert refused.value.status == 409 and "asleep" in str(refused.value.detail)

        awake = node.call("POST", "/internal/power/wake", response=NodeResources)
        assert awake.power == "awake"
        woken = run_request()
        node.run(woken)
        node.wait_state(woken.instance_id, "running")


def test_twenty_concurrent_runs_never_overbook(tmp_path: Path, driver: Driver) -> None:
    with start_node(tmp_path / "busy", driver, MAX_CORES=8, MAX_MEM=100_000) as node:
        requests = [run_request(vm=M1_SMALL) for _ in range(20)]

        def attempt(request: RunInstance) -> int:
            client = InternalClient(node.url, SECRET)
            try:
                client.call("POST", "/internal/instances", request)
                return 200
            except InternalCallError as exc:
                return exc.status
            finally:
                client.close()

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(attempt, requests))
        assert sorted(statuses) == [200] * 8 + [409] * 12
        assert node.resources().free.cores == 0
        accepted = [r for r, status in zip(requests, statuses, strict=True) if status == 200]
        for request in accepted:
            node.wait_state(request.instance_id, "running")
        assert len(node.runtime.hypervisor.list_ours()) == 8
