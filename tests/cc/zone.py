"""A test zone: one CC process in front of real simulated NC processes, driven through the
CC's internal API as the CLC drives it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from services.internal import InternalCallError
from services.messages.cluster import (ClusterInstanceList, DescribeResources, InstanceLaunch,
                                       NodeList, RunInstances, RunInstancesResult, ZoneResources)
from services.messages.node import ImageRef, InstanceNetwork, VmType, instance_mac
from tests.cc.cc_process import CcProcess, wait_for

SMALL = VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5)
XLARGE = VmType(name="c1.xlarge", cpu=4, memory_mb=2048, disk_gb=20)
_ids = itertools.count(0x1000)


def new_instance_id() -> str:
    return f"i-{next(_ids):08x}"


def run_request(vm: VmType, count: int = 1, min_count: int | None = None,
                target: str | None = None) -> RunInstances:
    launches = []
    for index in range(count):
        iid = new_instance_id()
        launches.append(InstanceLaunch(instance_id=iid, launch_index=index,
                                       network=InstanceNetwork(mac=instance_mac(iid), bridge="br0")))
    return RunInstances(reservation_id=f"r-{next(_ids):08x}", account_id="000000000001", vm=vm,
                        image=ImageRef(image_id="emi-00000001"), instances=launches,
                        min_count=count if min_count is None else min_count, target_node=target)


@dataclass
class Zone:
    cc: CcProcess
    node_names: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, body: Any = None, response: Any = None) -> Any:
        return self.cc.client.call(method, path, body, response)

    def nodes(self) -> NodeList:
        return self.call("GET", "/internal/nodes", response=NodeList)

    def states(self) -> dict[str, str]:
        return {n.name: n.state for n in self.nodes().nodes}

    def wait_states(self, wanted: dict[str, str], timeout: float = 20.0) -> None:
        wait_for(lambda: all(self.states().get(k) == v for k, v in wanted.items()), timeout,
                 f"node states {wanted}")

    def run(self, vm: VmType, count: int = 1, min_count: int | None = None,
            target: str | None = None) -> RunInstancesResult:
        return self.call("POST", "/internal/instances", run_request(vm, count, min_count, target),
                         RunInstancesResult)

    def run_one(self, vm: VmType) -> str:
        """The node one instance landed on."""
        result = self.run(vm)
        assert result.placed and result.placed[0].report is not None, result
        return result.placed[0].node

    def refused(self, vm: VmType, count: int = 1, min_count: int | None = None,
                target: str | None = None) -> dict[str, str]:
        try:
            result = self.run(vm, count, min_count, target)
        except InternalCallError as exc:
            return exc.detail  # type: ignore[no-any-return]
        raise AssertionError(f"expected a refusal, got {result}")

    def instances(self) -> ClusterInstanceList:
        return self.call("GET", "/internal/instances", response=ClusterInstanceList)

    def resources(self, *vms: VmType) -> ZoneResources:
        return self.call("POST", "/internal/resources", DescribeResources(vm_types=list(vms)),
                         ZoneResources)
