"""The cluster controller service: `uvicorn --factory cc.app:create_app`.

The one rule for the event loop here: every route is `async` and does no blocking work. The
zone's state (nodes, instances, reservations, the scheduler) lives in memory and changes only
on the loop, so no request waits for another's lock; the one blocking job, writing what changed
to SQLite, runs in a thread as a background batch (cluster.Cluster._write), never inside a
request. Measured on this machine (2 cores, shared, loaded): an instance report recorded in
memory costs about 50 us, the smallest SQLite commit 0.7 ms and a commit of one node's rows
several ms, so writing inside each request (as the CC did) made SQLite most of a launch's
cost and stalled every other request on the loop meanwhile; batched, a second of pushes is one
commit in a thread. Sync routes in the threadpool were the other choice, but then the registry
would need a lock around every read and write against the poll loop and against each other,
and the state would change on many threads; keeping it on the loop's one thread needs none.
The only lock (Reservations.lock) is never held across an await, let alone an HTTP call.

A ClusterFault raised anywhere below becomes the HTTP answer here, the CC's one translation of
its errors (a ClusterError body, the EC2 code the CLC passes on). Anything else is a bug and
surfaces as one: a 500 and a traceback in the log."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from cc.cluster import Cluster
from cc.faults import ClusterFault
from cc.network.service import ZoneNetwork, make_driver
from services.config import CloudConfig, load_config
from services.db import Database
from services.messages.attach import ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk, DiskAttachment
from services.messages.freeze import FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult, ThawFilesystems
from services.messages.cluster import (CC_CONSOLE_ROUTE, CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE,
                                       CC_NODE_EVENTS_ROUTE, CC_NODE_ROUTE, CC_NODES_ROUTE,
                                       CC_REBOOT_ROUTE, CC_RESOURCES_ROUTE, CC_SETTINGS_ROUTE,
                                       CC_TERMINATE_ROUTE, ClusterInstanceList, ClusterSettings, DescribeResources, DescribeZone,
                                       NodeInfo, NodeList, RegisterNode, RunInstances,
                                       RunInstancesResult, ZoneReport, ZoneResources)
from services.messages.network import CC_NETWORK_ROUTE, NetworkIntent, NetworkPlanView
from services.messages.node import ConsoleOutput, InstanceReport, NodeEvents
from cc.gauges import cc_gauges
from services.service_app import make_service_app
from services.tracing import current_request_id


GC_YOUNG = 100_000


def create_app(config: CloudConfig | None = None, own_url: str | None = None) -> FastAPI:
    """`own_url`: where NCs push their events to this CC; config.service_url("cc") unless told."""
    config = config or load_config()
    # A zone of 20,000 nodes keeps a few hundred thousand objects alive, and one poll answer
    # makes as many again: at the default thresholds the collector walked the whole heap so
    # often that parsing one answer took 11 s instead of 2 (measured, 20,000 nodes, 40,000
    # instances). Collect the young generation less often; reference cycles are rare here.
    gc.set_threshold(GC_YOUNG, 50, 100)
    db = Database(config.database_url("cc"))
    db.upgrade(Path(__file__).parent / "migrations")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        loop_task = asyncio.create_task(cluster.run_loops(stop))
        try:
            yield
        finally:
            stop.set()
            await loop_task
            await cluster.close()
            db.engine.dispose()

    app, recorder = make_service_app("cc", config.CLOUD_SECRET, config.LOG_LEVEL, lifespan=lifespan)
    cluster = Cluster(config, db, recorder, own_url=own_url)
    app.state.cluster = cluster
    cc_gauges(app.state.metrics, cluster.nodes)  # /metrics: booked vs max per node
    auth = [Depends(app.state.internal_auth)]

    @app.exception_handler(ClusterFault)
    async def cluster_fault(_: Request, exc: ClusterFault) -> JSONResponse:
        return JSONResponse({"detail": exc.error.model_dump()}, status_code=exc.status)

    network = ZoneNetwork(make_driver(config.VNET_DRIVER, config.EUCASIM_HOME.absolute() / "cc-network",
                                      config.VNET_LOCALIP or config.PUBLIC_HOST), recorder)
    app.state.network = network

    @app.put(CC_NETWORK_ROUTE, dependencies=auth)
    async def update_network(body: NetworkIntent) -> NetworkPlanView:
        # Applying runs iproute2, iptables-restore and dnsmasq: in a thread, never on the loop.
        return await asyncio.to_thread(network.update, body, cluster.underlay_addresses(),
                                       current_request_id())

    @app.get(CC_NETWORK_ROUTE, dependencies=auth)
    async def show_network() -> NetworkPlanView:
        return network.plan

    @app.get(CC_SETTINGS_ROUTE, dependencies=auth)
    async def show_settings() -> ClusterSettings:
        return cluster.settings()

    @app.put(CC_SETTINGS_ROUTE, dependencies=auth)
    async def change_settings(body: ClusterSettings) -> ClusterSettings:
        return await cluster.change_settings(body)

    @app.get(CC_NODES_ROUTE, dependencies=auth)
    async def list_nodes() -> NodeList:
        return cluster.nodes()

    @app.post(CC_NODES_ROUTE, dependencies=auth)
    async def register_node(body: RegisterNode) -> NodeInfo:
        return await cluster.register(body.url)

    @app.delete(CC_NODE_ROUTE.replace("{name}", "{name:path}"), dependencies=auth)
    async def deregister_node(name: str) -> NodeInfo:
        return await cluster.deregister(name)

    @app.post(CC_INSTANCES_ROUTE, dependencies=auth)
    async def run_instances(body: RunInstances) -> RunInstancesResult:
        recorder.record("received", f"run {len(body.instances)} {body.vm.name} "
                        f"(at least {body.min_count}) for {body.account_id}")
        return await cluster.run_instances(body)

    @app.get(CC_INSTANCES_ROUTE, dependencies=auth)
    async def describe_instances() -> ClusterInstanceList:
        return cluster.instances()

    @app.post(CC_TERMINATE_ROUTE, dependencies=auth)
    async def terminate(instance_id: str) -> InstanceReport:
        return await cluster.terminate(instance_id)

    @app.post(CC_REBOOT_ROUTE, dependencies=auth)
    async def reboot(instance_id: str) -> InstanceReport:
        return await cluster.reboot(instance_id)

    @app.get(CC_CONSOLE_ROUTE, dependencies=auth)
    async def console(instance_id: str) -> ConsoleOutput:
        return await cluster.console(instance_id)

    @app.post(ATTACH_ROUTE, dependencies=auth)
    async def attach_volume(instance_id: str, body: AttachDisk) -> DiskAttachment:
        return await cluster.attach_volume(instance_id, body)

    @app.post(DETACH_ROUTE, dependencies=auth)
    async def detach_volume(instance_id: str, volume_id: str, body: DetachDisk) -> DiskAttachment:
        return await cluster.detach_volume(instance_id, volume_id, body)

    @app.post(FREEZE_ROUTE, dependencies=auth)
    async def freeze_filesystems(instance_id: str, body: FreezeFilesystems) -> FreezeResult:
        return await cluster.freeze(instance_id, body)

    @app.post(THAW_ROUTE, dependencies=auth)
    async def thaw_filesystems(instance_id: str, body: ThawFilesystems) -> FreezeResult:
        return await cluster.thaw(instance_id, body)

    @app.post(CC_RESOURCES_ROUTE, dependencies=auth)
    async def describe_resources(body: DescribeResources) -> ZoneResources:
        return cluster.resources(body)

    @app.post(CC_DESCRIBE_ROUTE, dependencies=auth)
    async def describe_zone(body: DescribeZone) -> ZoneReport:
        return cluster.describe(body)

    @app.post(CC_NODE_EVENTS_ROUTE, dependencies=auth)
    async def node_events(body: NodeEvents) -> dict[str, int]:
        return {"known": cluster.node_events(body)}

    return app
