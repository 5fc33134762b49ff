"""A stand-in cluster controller that speaks the CLC's side of the contract in
services/messages/cluster.py and nothing more: it answers CC_DESCRIBE_ROUTE with a ZoneReport
and remembers the subscription, places every RunInstances on its one node (or refuses, or
hangs until released, as a test asks), and pushes ZoneEvents when a test says an instance
changed. Served on a real port (tests.support.servers.running), signed like the real CC."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from services.internal import InternalAuth, InternalClient
from services.messages.cluster import (CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE, CC_TERMINATE_ROUTE,
                                       CLC_ZONE_EVENTS_ROUTE, ClusterError, ClusterInstance,
                                       DescribeZone, NodeCapacity, Placement, RunInstances,
                                       RunInstancesResult, ZoneCapacity, ZoneEvents, ZoneReport)
from services.messages.node import InstanceReport, Resources, Subscription


class StandInCC:
    def __init__(self, secret: str, cores: int = 8) -> None:
        self.secret = secret
        self.version = 1
        self.free = Resources(cores=cores, memory_mb=64 * 1024, disk_gb=1000)
        self.max = self.free
        self.instances: dict[str, ClusterInstance] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.runs: list[RunInstances] = []
        self.refuse = False                 # answer the next RunInstances with 409
        self.hang = threading.Event()       # set: the next RunInstances waits for `release`
        self.release = threading.Event()
        self.hung = threading.Event()       # a RunInstances is waiting now
        self._lock = threading.Lock()
        self.app = self._make_app()

    def capacity(self) -> ZoneCapacity:
        return ZoneCapacity(version=self.version, nodes=[
            NodeCapacity(name="node-1", state="up", free=self.free, max=self.max)])

    def _make_app(self) -> FastAPI:
        app = FastAPI()
        auth = [Depends(InternalAuth(self.secret))]

        @app.post(CC_DESCRIBE_ROUTE, dependencies=auth)
        def describe(body: DescribeZone) -> ZoneReport:
            with self._lock:
                if body.subscribe is not None:
                    self.subscriptions[body.subscribe.key] = body.subscribe
                return ZoneReport(zone="zone-1", instances=list(self.instances.values()),
                                  capacity=self.capacity())

        @app.post(CC_INSTANCES_ROUTE, dependencies=auth, response_model=None)
        def run(body: RunInstances) -> RunInstancesResult | JSONResponse:
            if self.hang.is_set():
                self.hang.clear()
                self.hung.set()
                self.release.wait(60)
            with self._lock:
                self.runs.append(body)
                if self.refuse:
                    self.refuse = False
                    error = ClusterError(code="InsufficientInstanceCapacity",
                                         message="There is not enough capacity in this zone: "
                                                 "node-1 filled up meanwhile.")
                    return JSONResponse({"detail": error.model_dump()}, status_code=409)
                placed = []
                for launch in body.instances:
                    report = InstanceReport(
                        instance_id=launch.instance_id, reservation_id=body.reservation_id,
                        account_id=body.account_id, node_id="node-1", state="pending", vm=body.vm,
                        image_id=body.image.image_id, launched_at=datetime.now(timezone.utc),
                        network=launch.network)
                    self.instances[launch.instance_id] = ClusterInstance(**report.model_dump())
                    self.free = self.free.minus(body.vm.needs())
                    placed.append(Placement(instance_id=launch.instance_id, node="node-1",
                                            report=report))
                self.version += 1
                return RunInstancesResult(reservation_id=body.reservation_id, policy="GREEDY",
                                          placed=placed, capacity_version=self.version)

        @app.post(CC_TERMINATE_ROUTE, dependencies=auth)
        def terminate(instance_id: str) -> InstanceReport:
            with self._lock:
                item = self.instances[instance_id]
                item.state = "terminated"
                return InstanceReport(**item.model_dump())

        return app

    def adopt(self, instance_id: str, state: str, account_id: str = "000000000001") -> None:
        """An instance the zone runs, as if an earlier launch had put it there."""
        from services.messages.node import InstanceNetwork, VmType

        self.instances[instance_id] = ClusterInstance(
            instance_id=instance_id, reservation_id="r-00000001", account_id=account_id,
            node_id="node-1", state=state, vm=VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5),
            image_id="emi-00000001", launched_at=datetime.now(timezone.utc),
            network=InstanceNetwork(mac="d0:0d:00:00:00:07", bridge="br0"))

    def push(self, instance_ids: list[str], state: str, key: str = "zone-1") -> None:
        """Tell the subscribed CLC that these instances are now in `state` (a ZoneEvents push)."""
        with self._lock:
            for instance_id in instance_ids:
                self.instances[instance_id].state = state  # type: ignore[assignment]
            events = ZoneEvents(key=key, zone="zone-1",
                                instances=[self.instances[i] for i in instance_ids],
                                capacity=self.capacity())
            subscription = self.subscriptions["zone-1"]
        client = InternalClient(subscription.url, self.secret)
        try:
            client.call("POST", CLC_ZONE_EVENTS_ROUTE, events)
        finally:
            client.close()
