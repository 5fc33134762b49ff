"""RunInstances in the CC: decide where every instance goes (at least min_count or none),
reserve as it decides (`Placer`), then start them on their NCs, waking sleeping nodes first
(`PlacementStarter`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from cc.faults import ClusterFault
from cc.ncclient import NodeClients
from cc.node_capacity import NodeViews
from cc.power import PowerManager
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from cc.scheduler import NodeView, NotExcluded, Policy, TargetNode, standard_filters
from cc.store import ClusterStore
from services.internal import InternalCallError
from services.messages.cluster import InstanceLaunch, Placement, RunInstances
from services.messages.node import LaunchSpec, RunInstance, StateReason
from services.tracing import TraceRecorder

POINTER_KEY = "policy_state"


@dataclass(frozen=True)
class Decision:
    launch: InstanceLaunch
    node: NodeView          # as it was before this instance was booked on it


def _describe(view: NodeView) -> str:
    f = view.free
    return f"{f.cores} cores, {f.memory_mb} MB, {f.disk_gb} GB free"


class Placer:
    def __init__(self, registry: NodeRegistry, reservations: Reservations, policy: Policy,
                 store: ClusterStore, recorder: TraceRecorder) -> None:
        self._registry = registry
        self._reservations = reservations
        self.policy = policy
        self._store = store
        self._recorder = recorder
        self._saved = policy.snapshot()

    def use(self, policy: Policy) -> None:
        """Place with `policy` from the next decision on (the caller holds the reservations'
        lock, so no decision is half made with the old one)."""
        self.policy = policy
        self._saved = policy.snapshot()

    def decide(self, request: RunInstances) -> tuple[list[Decision], list[str]]:
        """Choose and reserve a node for as many instances as fit (up to all of them); raise
        ClusterFault, having reserved nothing, when fewer than min_count fit."""
        need = request.vm.needs()
        started = time.perf_counter()
        with self._reservations.lock:
            views = NodeViews(self._registry.nodes(), self._reservations.held)
            policy: Policy = self.policy
            excluded: NotExcluded | None = None
            if request.target_node is not None:
                target = self._registry.find(request.target_node)
                if target is None:
                    raise ClusterFault(404, "InvalidNode.NotFound",
                                       f"there is no node {request.target_node!r} in this zone")
                excluded = NotExcluded(only=target.url)
                policy = TargetNode(self.policy.name, views.index_of(target.url))
            filters = standard_filters(wakeable=self.policy.sleeps_idle_nodes, excluded=excluded)
            passes = filters.test(need)
            saved = policy.snapshot()
            decisions: list[Decision] = []
            for launch in request.instances:
                view = policy.choose(views, passes)
                if view is None:
                    break
                # The views are read afresh from the reservations, so this booking is what
                # the next choice sees.
                self._reservations.reserve(view.url, launch.instance_id, need)
                self._recorder.record("decided", f"placed {launch.instance_id} on {view.name}",
                                      reason=policy.why(view), before=_describe(view))
                decisions.append(Decision(launch, view))
            if len(decisions) < request.min_count:
                for decision in decisions:
                    self._reservations.release(decision.launch.instance_id)
                policy.restore(saved)
                why = filters.explain(policy.candidates(views), need)
                message = (f"There is not enough capacity in this zone for {request.min_count} "
                           f"{request.vm.name} instance(s): only {len(decisions)} fit "
                           f"({request.vm.cpu} cores, {request.vm.memory_mb} MB each).")
                self._recorder.record("decided", "refused: InsufficientInstanceCapacity",
                                      elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
                                      reason=f"{message} Filters: {why}")
                raise ClusterFault(409, "InsufficientInstanceCapacity", message)
            if len(decisions) < len(request.instances):
                self._recorder.record("decided", f"no room for {len(request.instances) - len(decisions)} more",
                                      reason=filters.explain(policy.candidates(views), need))
        self._recorder.record("decided", f"{len(decisions)} of {len(request.instances)} placed "
                              f"by {policy.name}",
                              elapsed_ms=round((time.perf_counter() - started) * 1000, 3))
        placed = {d.launch.instance_id for d in decisions}
        return decisions, [i.instance_id for i in request.instances if i.instance_id not in placed]

    def changed_snapshot(self) -> str | None:
        """The policy's state (the round-robin pointer) when it moved since the last call."""
        with self._reservations.lock:
            snapshot = self.policy.snapshot()
        if snapshot == self._saved:
            return None
        self._saved = snapshot
        return snapshot

    def persist(self) -> None:
        """Save the policy's state if it moved. Blocking (SQLite): the cluster runs it in a
        thread after every poll round and at shutdown rather than inside each decision, so a
        decision costs no disk write; a crash forgets at most one round of pointer movement."""
        snapshot = self.changed_snapshot()
        if snapshot is not None:
            self._store.set_state(POINTER_KEY, snapshot)


class PlacementStarter:
    """Starts decided instances on their NCs; a failed call releases the reservation and
    becomes a StateReason in the answer."""

    def __init__(self, registry: NodeRegistry, reservations: Reservations, clients: NodeClients,
                 power: PowerManager, recorder: TraceRecorder, tunnel_remote: str | None = None) -> None:
        self._tunnel_remote = tunnel_remote  # set when the CC builds networks (linux driver)
        self._registry = registry
        self._reservations = reservations
        self._clients = clients
        self._power = power
        self._recorder = recorder

    async def start(self, request: RunInstances, decisions: list[Decision]) -> list[Placement]:
        sleeping = {d.node.url: d.node.name for d in decisions if d.node.state == "asleep"}
        wake_errors = dict(zip(sleeping, await asyncio.gather(
            *(self._wake(url) for url in sleeping)), strict=True))
        shared = {name: getattr(request, name) for name in LaunchSpec.model_fields}
        return list(await asyncio.gather(
            *(self._start_one(shared, d, wake_errors.get(d.node.url)) for d in decisions)))

    async def _wake(self, url: str) -> str | None:
        try:
            await self._power.wake(url)
        except (httpx.HTTPError, InternalCallError, OSError, RuntimeError, TimeoutError) as exc:
            # The NC's or the wake command's failure; a bug in the CC still surfaces.
            return str(exc) or type(exc).__name__
        return None

    async def _start_one(self, shared: dict[str, object], decision: Decision,
                         wake_error: str | None) -> Placement:
        launch, node = decision.launch, decision.node
        if wake_error is not None:
            return self._failed(launch, node, f"node {node.name} could not be woken: {wake_error}")
        network = launch.network
        if self._tunnel_remote is not None and network.vlan is not None:
            network = network.model_copy(update={"tunnel_remote": self._tunnel_remote})
        spec = RunInstance(**shared, instance_id=launch.instance_id,  # type: ignore[arg-type]
                           launch_index=launch.launch_index, network=network, volumes=launch.volumes)
        started = time.perf_counter()
        try:
            report = await self._clients.run(node.url, spec)
        except (httpx.HTTPError, InternalCallError) as exc:
            return self._failed(launch, node, f"node {node.name} did not start it: {exc}")
        # The registry's list for the node now holds the instance, so its free figures count
        # it: the reservation has done its job.
        self._registry.record_report(node.url, report)
        self._reservations.release(launch.instance_id)
        self._recorder.record("called", f"NC {node.name}: run {launch.instance_id} -> {report.state}",
                              elapsed_ms=round((time.perf_counter() - started) * 1000, 3))
        return Placement(instance_id=launch.instance_id, node=node.name, report=report)

    def _failed(self, launch: InstanceLaunch, node: NodeView, message: str) -> Placement:
        self._reservations.release(launch.instance_id)
        self._recorder.record("error", message)
        return Placement(instance_id=launch.instance_id, node=node.name,
                         reason=StateReason(code="Server.InternalError", message=message))
