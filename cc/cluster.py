"""One availability zone as the CC runs it: the parts (registry, reservations, scheduler,
poller, power manager, placement, the feed to the CLC) wired together, and one method per
internal route.

Everything here runs on the event loop and changes memory only; the one blocking job, writing
the registry's changes to SQLite, is a background task that writes each batch in a thread
(`_write`), coalescing what changes while a write is in flight."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from cc import capacity
from cc.faults import ClusterFault
from cc.feed import Coalescer, ZoneFeed
from cc.ncclient import NodeClients
from cc.node_capacity import CapacityView, NodeViews, node_info
from cc.node_urls import split_url
from cc.placement import POINTER_KEY, Placer, PlacementStarter
from cc.poller import Poller
from cc.power import PowerManager
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from cc.scheduler import POLICIES, make_policy
from cc.store import ClusterStore
from cc.tracked_node import TrackedNode
from services.config import CloudConfig
from services.db import Database
from services.internal import InternalCallError
from services.messages.attach import AttachDisk, DetachDisk, DiskAttachment
from services.messages.freeze import FreezeFilesystems, FreezeResult, ThawFilesystems
from services.messages.cluster import (ClusterInstance, ClusterInstanceList, DescribeResources,
                                       ClusterSettings, DescribeZone, NodeInfo, NodeList,
                                       RunInstances, RunInstancesResult, ZoneReport, ZoneResources)
from services.messages.node import ConsoleOutput, InstanceReport, NodeEvents
from services.tracing import TraceRecorder

T = TypeVar("T")
WRITE_EVERY = 1.0
# How long a registration waits for the CLC to take the new node's capacity (the push's own
# timeout is longer; the CLI gives the whole call 15 s, the first poll of the node up to 5 of them).
REGISTER_PUSH_WAIT = 5.0
DESCRIBE_SECONDS_PER_NODE = 0.003
# The CLC's cluster.* properties, kept in the CC's own state table so they outlive a restart:
# a value set there beats eucalyptus.conf's SCHEDPOLICY and NC_POLLING_FREQUENCY.
POLICY_SETTING = "setting:scheduling_policy"
POLLING_SETTING = "setting:polling_period"
log = logging.getLogger("eucasim.cc.cluster")


class Cluster:
    def __init__(self, config: CloudConfig, db: Database, recorder: TraceRecorder,
                 own_url: str | None = None) -> None:
        self.zone = config.zones[0] if config.zones else "zone-1"
        self.recorder = recorder
        self.store = ClusterStore(db)
        self.capacity_view = CapacityView()
        self.feed = ZoneFeed(
            self.zone, config.CLOUD_SECRET,
            lambda: self.capacity_view.entries(self.registry.nodes(), self.reservations.held),
            lambda url: self.capacity_view.entry(url, self.registry.find(url), self.reservations.held))
        # At most one write a second: the NCs hold the truth and a restarted CC re-reads it
        # from them, so a crash costs at most that second of bookkeeping, and a busy second
        # of pushes becomes one transaction.
        self.writer = Coalescer("writing the registry", self._write, pause=WRITE_EVERY)
        self.reservations = Reservations(on_change=self.feed.capacity_changed)
        # Loaded before the loop runs: the one blocking read, at start.
        self.registry = NodeRegistry(self.store.load_nodes(), config.nodes, config.NC_PORT, listener=self)
        self.registry.lost_after = config.NODE_LOST_GRACE
        self.registry.ended.delivered = lambda: self.feed.delivered_until
        policy_name = self.store.get_state(POLICY_SETTING) or config.SCHEDPOLICY
        polling = float(self.store.get_state(POLLING_SETTING) or config.NC_POLLING_FREQUENCY)
        self.policy = make_policy(policy_name, self.store.get_state(POINTER_KEY))
        # A poll gives up after two intervals (five seconds at least), so one hung process
        # cannot stall the rounds for long; longer for a zone of thousands of configured
        # nodes, whose simulated NC process answers for all of them in one describe (20,000
        # nodes and 40,000 instances is tens of MB) and must not look down for being busy.
        self.clients = NodeClients(config.CLOUD_SECRET,
                                   timeout=max(5.0, 2 * config.NC_POLLING_FREQUENCY,
                                               DESCRIBE_SECONDS_PER_NODE * len(config.nodes)))
        self.power = PowerManager(self.registry, self.clients, self.reservations, recorder,
                                  enabled=self.policy.sleeps_idle_nodes,
                                  idle_threshold=config.POWER_IDLETHRESH,
                                  wake_command=config.POWER_WAKE_COMMAND)
        self.poller = Poller(self.registry, self.clients, self.reservations, self.power, recorder,
                             polling,
                             own_url=own_url if own_url is not None else config.service_url("cc"))
        self.placer = Placer(self.registry, self.reservations, self.policy, self.store, recorder)
        self._waking: set[asyncio.Task[None]] = set()
        self.starter = PlacementStarter(
            self.registry, self.reservations, self.clients, self.power, recorder,
            tunnel_remote=(config.VNET_LOCALIP or config.PUBLIC_HOST) if config.VNET_DRIVER == "linux" else None)

    # -- what the registry tells (registry.Listener) -------------------------------------------

    def instances_changed(self, items: list[ClusterInstance]) -> None:
        self.feed.instances_changed(items)

    def capacity_changed(self, url: str) -> None:
        self.feed.capacity_changed(url)

    def stored_changed(self) -> None:
        self.writer.kick()

    async def _write(self) -> None:
        nodes, deleted = self.registry.take_changes()
        await asyncio.to_thread(self.store.write, nodes, deleted)

    # -- nodes ---------------------------------------------------------------------------------

    def _info(self, node: TrackedNode) -> NodeInfo:
        return node_info(node, self.reservations.held(node.url))

    def underlay_addresses(self) -> dict[str, str]:
        """node id -> the address the CC reaches it at, where its VXLAN tunnels end."""
        return {node.name: urlsplit(node.url).hostname or "" for node in self.registry.nodes()}

    def nodes(self) -> NodeList:
        return NodeList(zone=self.zone, policy=self.policy.name,
                        nodes=[self._info(n) for n in self.registry.nodes()])

    async def register(self, url: str) -> NodeInfo:
        try:
            node = self.registry.register(url)
        except KeyError:
            raise ClusterFault(409, "InvalidNode.Duplicate", f"{url} is already registered") from None
        # Poll at once so a node that answers is usable straight away, and answer once the
        # CLC has its capacity: RunInstances is admitted against the CLC's view, so a launch
        # right after the registration would otherwise race the push and be refused.
        await self.poller.poll_now(node.url)
        namesake = self.registry.namesake(node.url)
        if namesake is not None:
            # Two nodes of one name would be counted as one: refuse the second, saying why.
            await self.deregister(node.url)
            raise ClusterFault(409, "InvalidNode.Duplicate",
                               f"the node controller at {node.url} calls itself {namesake.name!r}, as "
                               f"the one at {namesake.url} does: give each host its own PUBLIC_HOST "
                               f"(the address the CC reaches it at) or NC_NODE_ID")
        if not await self.feed.pusher.flush(REGISTER_PUSH_WAIT):
            log.warning("registered %s; the CLC has not taken its capacity within %g s (its next "
                        "round will)", node.url, REGISTER_PUSH_WAIT)
        return self._info(self.registry.find(node.url) or node)

    async def deregister(self, name: str) -> NodeInfo:
        try:
            node = self.registry.deregister(name)
        except KeyError:
            raise ClusterFault(404, "InvalidNode.NotFound", f"there is no node {name!r} in this zone") from None
        root = split_url(node.url)[0]
        if root not in self.registry.by_process():
            await self.clients.forget(node.url)
        return self._info(node)

    # -- settings (the CLC's cluster.* properties) ----------------------------------------------

    def settings(self) -> ClusterSettings:
        return ClusterSettings(scheduling_policy=self.policy.name, polling_period=self.poller.interval)

    async def change_settings(self, wanted: ClusterSettings) -> ClusterSettings:
        """Apply at once what `wanted` sets, and keep it for the next start."""
        name = wanted.scheduling_policy
        if name is not None and name not in POLICIES:
            raise ClusterFault(400, "InvalidParameterValue",
                               f"{name!r} is not a scheduling policy ({', '.join(POLICIES)})")
        if name is not None and name != self.policy.name:
            self._switch_policy(name)
            await asyncio.to_thread(self.store.set_state, POLICY_SETTING, name)
        if wanted.polling_period is not None:
            self.poller.retime(wanted.polling_period)
            await asyncio.to_thread(self.store.set_state, POLLING_SETTING, f"{wanted.polling_period:g}")
        return self.settings()

    def _switch_policy(self, name: str) -> None:
        policy = make_policy(name)
        self.policy = policy
        with self.reservations.lock:
            self.placer.use(policy)
        self.power.enabled = policy.sleeps_idle_nodes
        if not policy.sleeps_idle_nodes:
            # Only POWERSAVE offers an asleep node: under any other policy it would sit unused.
            for node in self.registry.nodes():
                if node.state == "asleep":
                    self._waking.add(asyncio.create_task(self.power.wake(node.url)))
        self._waking = {t for t in self._waking if not t.done()}
        self.recorder.record("decided", f"scheduling policy now {name}", request_id="cc-settings")

    # -- instances -----------------------------------------------------------------------------

    async def run_instances(self, request: RunInstances) -> RunInstancesResult:
        decisions, not_placed = self.placer.decide(request)
        # The view at this version counts these instances (as reservations, then as the
        # NC's own), so the CLC may drop its own hold on them once it has seen it.
        booked = self.feed.version
        placed = await self.starter.start(request, decisions)
        return RunInstancesResult(reservation_id=request.reservation_id, policy=self.policy.name,
                                  placed=placed, not_placed=not_placed, capacity_version=booked)

    def instances(self) -> ClusterInstanceList:
        return ClusterInstanceList(zone=self.zone, instances=self.registry.instances())

    async def _forward(self, instance_id: str,
                       call: Callable[[str, str], Awaitable[T]]) -> tuple[TrackedNode, T]:
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
            if isinstance(exc.detail, dict) and isinstance(exc.detail.get("code"), str):
                # The NC named the EC2 error itself (a volume's device in use, …): passed on.
                raise ClusterFault(exc.status if exc.status < 500 else 502, exc.detail["code"],
                                   f"node {node.name}: {exc.detail.get('message', '')}") from None
            code = "InvalidInstanceID.NotFound" if exc.status == 404 else "InternalError"
            raise ClusterFault(exc.status if exc.status < 500 else 502, code,
                               f"node {node.name}: {exc.detail}") from None
        except httpx.HTTPError as exc:
            raise ClusterFault(503, "NodeUnavailable",
                               f"node {node.name} did not answer: {exc or type(exc).__name__}") from None

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

    # -- EBS volumes (services/messages/attach.py): the same body on to the instance's NC -------
    # The NC pushes the instance's report with its volumes once they changed, so the zone's
    # view (and the CLC's) follows without the CC recording anything itself.

    async def attach_volume(self, instance_id: str, body: AttachDisk) -> DiskAttachment:
        self.recorder.record("received", f"attach {body.volume_id} to {instance_id} as {body.device} "
                             f"({body.source.uri})")
        return (await self._forward(instance_id, lambda url, iid: self.clients.attach(url, iid, body)))[1]

    async def detach_volume(self, instance_id: str, volume_id: str, body: DetachDisk) -> DiskAttachment:
        self.recorder.record("received", f"detach {volume_id} from {instance_id}" + (" (force)" if body.force else ""))
        call = lambda url, iid: self.clients.detach(url, iid, volume_id, body)  # noqa: E731
        return (await self._forward(instance_id, call))[1]

    # -- a guest's file systems around a snapshot (services/messages/freeze.py) ------------------

    async def freeze(self, instance_id: str, body: FreezeFilesystems) -> FreezeResult:
        self.recorder.record("received", f"freeze {instance_id} for a snapshot of {body.volume_id}")
        return (await self._forward(instance_id, lambda url, iid: self.clients.freeze(url, iid, body)))[1]

    async def thaw(self, instance_id: str, body: ThawFilesystems) -> FreezeResult:
        self.recorder.record("received", f"thaw {instance_id} after the snapshot of {body.volume_id}")
        return (await self._forward(instance_id, lambda url, iid: self.clients.thaw(url, iid, body)))[1]

    # -- pushes and the CLC's view ---------------------------------------------------------------

    def node_events(self, events: NodeEvents) -> int:
        """An NC process (`events.key` is its root URL, as this CC subscribed it) pushed what
        changed on its nodes: taken as a poll's answer would be. Returns how many events were
        for nodes this zone knows."""
        known = 0
        for event in events.events:
            url = events.key.rstrip("/") + event.prefix.rstrip("/")
            if not self.registry.record_event(url, event.resources, event.instances):
                log.info("events for %s, which is not a node of this zone, ignored", url)
                continue
            known += 1
            self.reservations.settle(url, [r.instance_id for r in event.instances])
        return known

    def describe(self, request: DescribeZone) -> ZoneReport:
        """The whole zone at once; with `subscribe`, changes are pushed from now on."""
        if request.subscribe is not None:
            self.feed.subscribe(request.subscribe)
        return ZoneReport(zone=self.zone, instances=self.registry.instances(),
                          capacity=self.feed.described() if request.subscribe is not None
                          else self.feed.capacity_view(), nodes_settled=self.registry.settled())

    def resources(self, request: DescribeResources) -> ZoneResources:
        views = NodeViews(self.registry.nodes(), self.reservations.held)
        usable = [v for v in views if v.state != "down" and v.max.cores > 0]
        return capacity.describe(self.zone, usable, self.registry.states(), request.vm_types)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run_loops(self, stop: asyncio.Event) -> None:
        async def after_round() -> None:
            await asyncio.to_thread(self.placer.persist)

        await asyncio.gather(self.poller.run(stop, after_round=after_round),
                             self.writer.run(stop), self.feed.pusher.run(stop))

    async def close(self) -> None:
        await self.writer.run_once()
        await asyncio.to_thread(self.placer.persist)
        await self.feed.aclose()
        await self.clients.aclose()
