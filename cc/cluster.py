"""One availability zone as the CC runs it: the parts (registry, reservations, policy,
poller, power manager, placement) wired together, and one method per internal route."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cc import capacity
from cc.faults import ClusterFault
from cc.ncclient import NodeClients
from cc.placement import POINTER_KEY, Launcher, Placer
from cc.poller import Poller
from cc.power import PowerManager
from cc.registry import Node, NodeRegistry
from cc.reservations import Reservations
from cc.scheduler import make_policy
from cc.store import ClusterStore
from services.config import CloudConfig
from services.db import Database
from services.internal import InternalCallError
from services.messages.cluster import (ClusterInstanceList, DescribeResources, NodeInfo, NodeList,
                                       RunInstances, RunInstancesResult, ZoneResources)
from services.messages.node import ConsoleOutput, InstanceReport
from services.tracing import TraceRecorder

T = TypeVar("T")


class Cluster:
    def __init__(self, config: CloudConfig, db: Database, recorder: TraceRecorder) -> None:
        self.zone = config.zones[0] if config.zones else "zone-1"
        self.store = ClusterStore(db)
        self.registry = NodeRegistry(self.store, config.nodes, config.NC_PORT)
        self.reservations = Reservations()
        self.policy = make_policy(config.SCHEDPOLICY, self.store.get_state(POINTER_KEY))
        # A poll gives up after two intervals (five seconds at least: one simulated NC process
        # serving a hundred nodes answers slowly under load), so one hung node cannot stall
        # the rounds for long.
        self.clients = NodeClients(config.CLOUD_SECRET,
                                   timeout=max(5.0, 2 * config.NC_POLLING_FREQUENCY))
        self.power = PowerManager(self.registry, self.clients, self.reservations, recorder,
                                  enabled=config.SCHEDPOLICY == "POWERSAVE",
                                  idle_threshold=config.POWER_IDLETHRESH,
                                  wake_command=config.POWER_WAKE_COMMAND)
        self.poller = Poller(self.registry, self.clients, self.reservations, self.power, recorder,
                             config.NC_POLLING_FREQUENCY)
        self.placer = Placer(self.registry, self.reservations, self.policy, self.store, recorder)
        self.launcher = Launcher(self.registry, self.reservations, self.clients, self.power, recorder)

    # -- nodes ---------------------------------------------------------------------------------

    def _info(self, node: Node) -> NodeInfo:
        return self.registry.info(node, self.reservations.held(node.url))

    def nodes(self) -> NodeList:
        return NodeList(zone=self.zone, policy=self.policy.name,
                        nodes=[self._info(n) for n in self.registry.nodes()])

    async def register(self, url: str) -> NodeInfo:
        try:
            node = self.registry.register(url)
        except KeyError:
            raise ClusterFault(409, "InvalidNode.Duplicate", f"{url} is already registered") from None
        # Poll at once so a node that answers is usable straight away.
        await self.poller.poll_node(node.url)
        return self._info(self.registry.find(node.url) or node)

    async def deregister(self, name: str) -> NodeInfo:
        try:
            node = self.registry.deregister(name)
        except KeyError:
            raise ClusterFault(404, "InvalidNode.NotFound", f"there is no node {name!r} in this zone") from None
        await self.clients.forget(node.url)
        return self._info(node)

    # -- instances -----------------------------------------------------------------------------

    async def run_instances(self, request: RunInstances) -> RunInstancesResult:
        decisions, not_placed = self.placer.decide(request)
        placed = await self.launcher.start(request, decisions)
        return RunInstancesResult(reservation_id=request.reservation_id, policy=self.policy.name,
                                  placed=placed, not_placed=not_placed)

    def instances(self) -> ClusterInstanceList:
        return ClusterInstanceList(zone=self.zone, instances=self.registry.instances())

    async def _forward(self, instance_id: str,
                       call: Callable[[str, str], Awaitable[T]]) -> tuple[Node, T]:
        node = self.registry.locate(instance_id)
        if node is None:
            raise ClusterFault(404, "InvalidInstanceID.NotFound",
                               f"The instance ID '{instance_id}' does not exist in zone {self.zone}")
        if node.state == "down":
            raise ClusterFault(503, "NodeUnavailable",
                               f"node {node.name} of instance {instance_id} is down: {node.last_error}")
        try:
            return node, await call(node.url, instance_id)
        except InternalCallError as exc:
            code = "InvalidInstanceID.NotFound" if exc.status == 404 else "InternalError"
            raise ClusterFault(exc.status if exc.status < 500 else 502, code,
                               f"node {node.name}: {exc.detail}") from None
        except Exception as exc:  # noqa: BLE001 - the node did not answer
            raise ClusterFault(503, "NodeUnavailable", f"node {node.name} did not answer: {exc}") from None

    async def terminate(self, instance_id: str) -> InstanceReport:
        node, report = await self._forward(instance_id, self.clients.terminate)
        self.registry.record_report(node.url, report)
        return report

    async def reboot(self, instance_id: str) -> InstanceReport:
        node, report = await self._forward(instance_id, self.clients.reboot)
        self.registry.record_report(node.url, report)
        return report

    async def console(self, instance_id: str) -> ConsoleOutput:
        return (await self._forward(instance_id, self.clients.console))[1]

    # -- capacity ------------------------------------------------------------------------------

    def resources(self, request: DescribeResources) -> ZoneResources:
        with self.reservations.lock:
            views = self.registry.views(self.reservations.held_by_node())
        states = [n.state for n in self.registry.nodes()]
        return capacity.describe(self.zone, views, states, request.vm_types)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run_loops(self, stop: asyncio.Event) -> None:
        await self.poller.run(stop, after_round=self.placer.persist)

    async def close(self) -> None:
        self.placer.persist()
        await self.clients.aclose()

