"""Fixtures for the node controller: a real NC app on a real socket, reached with signed calls
through services.internal.InternalClient, over each hypervisor driver in turn (libvirt's test
driver and the in-memory fake), as Nova runs its tests against its fake and libvirt drivers:
a test that takes `driver`, `node` or `start_node` runs once per driver."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nc.app import create_app
from nc.hypervisor import Hypervisor, open_hypervisor
from nc.node import NodeRuntime, write_node_xml
from nc.process import NodeProcess
from services.config import load_config
from services.internal import InternalClient
from services.messages.node import (ImageRef, InstanceList, InstanceNetwork, InstanceReport,
                                    NodeResources, RunInstance, VmType, instance_mac)
from tests.support.servers import running
from tests.support.waiting import wait_for

SECRET = "test-secret"
M1_SMALL = VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5)
C1_XLARGE = VmType(name="c1.xlarge", cpu=4, memory_mb=2048, disk_gb=20)
_ids = itertools.count(0x10000000)


def new_instance_id() -> str:
    return f"i-{next(_ids):08x}"


def run_request(instance_id: str | None = None, vm: VmType = M1_SMALL, image: ImageRef | None = None,
                kernel: ImageRef | None = None, ramdisk: ImageRef | None = None,
                account_id: str = "123456789012") -> RunInstance:
    instance_id = instance_id or new_instance_id()
    return RunInstance(instance_id=instance_id, reservation_id="r-" + instance_id[2:], account_id=account_id,
                       vm=vm, image=image or ImageRef(image_id="emi-00000001"), kernel=kernel, ramdisk=ramdisk,
                       network=InstanceNetwork(mac=instance_mac(instance_id), bridge="br0",
                                               private_ip="172.31.0.5"))


@dataclass(frozen=True)
class Driver:
    """How a test asks for a hypervisor of one kind: a private one per node, or the one host
    of this process that every connection shares (test:///default, fake:///shared)."""
    name: str
    shared_uri: str

    def private_uri(self, home: Path) -> str:
        return f"test://{write_node_xml(home / 'node.xml')}" if self.name == "libvirt" else "fake://"

    def open(self, uri: str, node_id: str) -> Hypervisor:
        return open_hypervisor(uri, "test", node_id)


DRIVERS = {"libvirt": Driver("libvirt", "test:///default"), "fake": Driver("fake", "fake:///shared")}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]


@dataclass
class Node:
    """A running single-node NC and a signed client for it."""
    url: str
    client: InternalClient
    runtime: NodeRuntime
    process: NodeProcess
    home: Path

    def call(self, method: str, path: str, body: Any = None, response: Any = None) -> Any:
        return self.client.call(method, path, body, response)

    def resources(self) -> NodeResources:
        return self.call("GET", "/internal/resources", response=NodeResources)

    def run(self, request: RunInstance) -> InstanceReport:
        return self.call("POST", "/internal/instances", request, InstanceReport)

    def instance(self, instance_id: str) -> InstanceReport:
        listing = self.call("GET", "/internal/instances", response=InstanceList)
        return next(i for i in listing.instances if i.instance_id == instance_id)

    def runtime_pushes(self) -> int:
        """How many pushes this node's process has attempted."""
        return self.process.pusher.pushes

    def wait_state(self, instance_id: str, state: str, timeout: float = 15.0) -> InstanceReport:
        return wait_for(lambda: (r := self.instance(instance_id)).state == state and r,
                        timeout, f"{instance_id} to be {state}")


@contextmanager
def start_node(home: Path, driver: Driver, **overrides: Any) -> Iterator[Node]:
    home.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "EUCASIM_HOME": home, "CLOUD_SECRET": SECRET, "NC_POLLING_FREQUENCY": 0.2,
        "NC_NODE_ID": f"node-{home.name}", "HYPERVISOR_URI": driver.private_uri(home),
    }
    settings.update(overrides)
    app = create_app(load_config(**settings))
    with running(app) as url:
        client = InternalClient(url, SECRET)
        try:
            yield Node(url, client, app.state.node, app.state.process, home)
        finally:
            client.close()


@pytest.fixture
def node(tmp_path: Path, driver: Driver) -> Iterator[Node]:
    with start_node(tmp_path / "n1", driver) as started:
        yield started
