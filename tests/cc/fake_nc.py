"""A small NC process in memory that speaks the NC contract of services/messages/node.py (the
describe call at its root, the per-node routes under each prefix, NodeEvents pushed to the
subscriber), and a CLC stand-in that collects the ZoneEvents a CC pushes. Both are FastAPI
apps served on real ports (tests.support.servers.running); they count every call, so a test
can say how the CC talked to them.

Instances "start" when the test says so (`set_state`, then `push`); with `auto_run` the fake
reports each new instance running in its next push, which is how the benchmark uses it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone

from fastapi import Depends, FastAPI, HTTPException

from services.internal import AsyncInternalClient, InternalAuth, InternalClient
from services.messages.cluster import (CC_NODE_EVENTS_ROUTE, CLC_ZONE_EVENTS_ROUTE, NodeCapacity, ZoneCapacity,
                                       ZoneEvents)
from services.messages.node import (NC_DESCRIBE_ROUTE, NC_INSTANCES_ROUTE, NC_RESOURCES_ROUTE,
                                    DescribeNodes, InstanceList, InstanceReport, InstanceState,
                                    NodeEvent, NodeEvents, NodeProcessReport, NodeResources,
                                    NodeStatus, Resources, RunInstance, Subscription)


class FakeNode:
    def __init__(self, node_id: str, cores: int, memory_mb: int, disk_gb: int) -> None:
        self.node_id = node_id
        self.max = Resources(cores=cores, memory_mb=memory_mb, disk_gb=disk_gb)
        self.instances: dict[str, InstanceReport] = {}

    def resources(self) -> NodeResources:
        booked = Resources(cores=0, memory_mb=0, disk_gb=0)
        for report in self.instances.values():
            if report.state != "terminated":
                booked = booked.plus(report.vm.needs())
        return NodeResources(node_id=self.node_id, max=self.max, free=self.max.minus(booked),
                             host=self.max, hypervisor="fake://")


class FakeNc:
    def __init__(self, secret: str, prefixes: list[str], *, cores: int = 8, memory_mb: int = 65536,
                 disk_gb: int = 1000, describe: bool = True, auto_run: bool = False) -> None:
        self.secret = secret
        self.nodes = {p: FakeNode(p.strip("/") or "node-0", cores, memory_mb, disk_gb) for p in prefixes}
        self.calls: Counter[str] = Counter()
        self.subscriptions: list[Subscription] = []
        self.malformed = False
        self.auto_run = auto_run
        self._changed: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._pushing: asyncio.Task[None] | None = None
        self.app = self._build(describe)

    @property
    def subscription(self) -> Subscription | None:
        return self.subscriptions[-1] if self.subscriptions else None

    def _build(self, describe: bool) -> FastAPI:
        app = FastAPI()
        auth = [Depends(InternalAuth(self.secret))]

        if describe:
            @app.post(NC_DESCRIBE_ROUTE, dependencies=auth, response_model=None)
            def describe_nodes(body: DescribeNodes) -> NodeProcessReport | dict[str, object]:
                self.calls["describe"] += 1
                if body.subscribe is not None:
                    self.subscriptions.append(body.subscribe)
                if self.malformed:
                    return {"nodes": [{"prefix": p} for p in self.nodes]}
                with self._lock:
                    return NodeProcessReport(nodes=[
                        NodeStatus(prefix=p, resources=n.resources(), instances=list(n.instances.values()))
                        for p, n in self.nodes.items()])

        # One set of routes for every prefixed node (a node's name is a path parameter), so a
        # fake of 20,000 nodes does not match each request against 60,000 routes.
        if "" in self.nodes:
            self._node_routes(app, auth, "", lambda: "")
        if any(self.nodes):
            self._node_routes(app, auth, "/{name}", lambda name: "/" + name)
        return app

    def _node(self, prefix: str) -> FakeNode:
        node = self.nodes.get(prefix)
        if node is None:
            raise HTTPException(404, f"no node {prefix}")
        return node

    def _node_routes(self, app: FastAPI, auth: list[object], path: str,
                     prefix_of: Callable[..., str]) -> None:
        @app.get(path + NC_RESOURCES_ROUTE, dependencies=auth)  # type: ignore[arg-type]
        def resources(prefix: str = Depends(prefix_of)) -> NodeResources:
            self.calls["resources"] += 1
            return self._node(prefix).resources()

        @app.get(path + NC_INSTANCES_ROUTE, dependencies=auth)  # type: ignore[arg-type]
        def instances(prefix: str = Depends(prefix_of)) -> InstanceList:
            self.calls["instances"] += 1
            node = self._node(prefix)
            return InstanceList(node_id=node.node_id, instances=list(node.instances.values()))

        @app.post(path + NC_INSTANCES_ROUTE, dependencies=auth)  # type: ignore[arg-type]
        async def run(body: RunInstance, prefix: str = Depends(prefix_of)) -> InstanceReport:
            self.calls["run"] += 1
            node = self._node(prefix)
            report = InstanceReport(
                instance_id=body.instance_id, reservation_id=body.reservation_id,
                account_id=body.account_id, node_id=node.node_id, state="pending", vm=body.vm,
                image_id=body.image.image_id, launched_at=datetime.now(timezone.utc),
                network=body.network)
            with self._lock:
                node.instances[body.instance_id] = report
            if self.auto_run:
                self.set_state(prefix, body.instance_id, "running")
                self._push_soon()
            return report

    # -- what a test does ---------------------------------------------------------------------

    def set_state(self, prefix: str, instance_id: str, state: InstanceState) -> None:
        with self._lock:
            node = self.nodes[prefix]
            node.instances[instance_id] = node.instances[instance_id].model_copy(update={"state": state})
            self._changed.setdefault(prefix, set()).add(instance_id)

    def add_instance(self, prefix: str, report: InstanceReport) -> None:
        with self._lock:
            self.nodes[prefix].instances[report.instance_id] = report
            self._changed.setdefault(prefix, set()).add(report.instance_id)

    def _events(self) -> NodeEvents | None:
        subscription = self.subscription
        with self._lock:
            changed, self._changed = self._changed, {}
            if subscription is None or not changed:
                return None
            events = [NodeEvent(prefix=p, resources=self.nodes[p].resources(),
                                instances=[self.nodes[p].instances[i] for i in ids])
                      for p, ids in changed.items()]
        return NodeEvents(key=subscription.key, events=events)

    def push(self) -> None:
        """Send what changed to the subscriber now (from the test's thread)."""
        events = self._events()
        if events is None:
            raise AssertionError("nothing to push, or no CC subscribed yet")
        assert self.subscription is not None
        client = InternalClient(self.subscription.url, self.secret)
        try:
            client.call("POST", CC_NODE_EVENTS_ROUTE, events)
            self.calls["pushed"] += 1
        finally:
            client.close()

    def _push_soon(self) -> None:
        """In the app's loop: one push in flight at a time, the rest coalesced after it."""
        if self._pushing is None or self._pushing.done():
            self._pushing = asyncio.get_running_loop().create_task(self._push_loop())

    async def _push_loop(self) -> None:
        assert self.subscription is not None
        client = AsyncInternalClient(self.subscription.url, self.secret, timeout=60)
        try:
            while (events := self._events()) is not None:
                await client.call("POST", CC_NODE_EVENTS_ROUTE, events)
                self.calls["pushed"] += 1
        finally:
            await client.aclose()


class ClcStandIn:
    """Collects the ZoneEvents a CC pushes to CLC_ZONE_EVENTS_ROUTE. With `keep=False` (the
    benchmark at 20,000 nodes) it keeps only each instance's latest state and a count, not
    every push: thousands of pushes of a 20,000-node capacity view are gigabytes."""

    def __init__(self, secret: str, delay: float = 0.0, keep: bool = True, deltas: bool = False) -> None:
        self.received: list[ZoneEvents] = []
        self.pushes = 0
        self._states: dict[str, str] = {}
        # With `deltas`, it takes capacity deltas as the CLC does (clc/zone_view.py) and says
        # so in its answer; the view it holds is `capacity` at `capacity_version`.
        self.capacity: dict[str, NodeCapacity] | None = None
        self.capacity_version = -1
        self._lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post(CLC_ZONE_EVENTS_ROUTE, dependencies=[Depends(InternalAuth(secret))])
        def zone_events(body: ZoneEvents) -> dict[str, object]:
            # A busy CLC: it takes `delay` seconds to take a push (sync: in the threadpool).
            time.sleep(delay)
            with self._lock:
                self.pushes += 1
                self._states.update({i.instance_id: i.state for i in body.instances})
                if keep:
                    self.received.append(body)
                if not deltas:
                    return {}
                return {"capacity_stale": body.capacity is not None and not self._take(body.capacity)}

    def _take(self, view: ZoneCapacity) -> bool:
        if view.base is None:
            self.capacity = {n.name: n for n in view.nodes}
        elif self.capacity is not None and view.base == self.capacity_version:
            self.capacity.update({n.name: n for n in view.nodes})
            for name in view.removed:
                self.capacity.pop(name, None)
        else:
            return False
        self.capacity_version = view.version
        return True

    def instance_states(self) -> dict[str, str]:
        """Each instance's latest pushed state."""
        with self._lock:
            return dict(self._states)


def create_app() -> FastAPI:
    """The fake NC as its own process, for benchmarks/cc_placement.py --fake-nc:
    `FAKE_NC_NODES=20000 FAKE_NC_CORES=4 CLOUD_SECRET=… uvicorn --factory tests.cc.fake_nc:create_app`."""
    import os

    count = int(os.environ.get("FAKE_NC_NODES", "1"))
    nc = FakeNc(os.environ["CLOUD_SECRET"], [f"/node-{n}" for n in range(1, count + 1)],
                cores=int(os.environ.get("FAKE_NC_CORES", "8")), auto_run=True)
    return nc.app
