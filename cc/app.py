"""The cluster controller service: `uvicorn --factory cc.app:create_app`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from cc.cluster import Cluster
from cc.faults import ClusterFault
from services.config import CloudConfig, load_config
from services.db import Database
from services.messages.cluster import (ClusterInstanceList, DescribeResources, NodeInfo, NodeList,
                                       RegisterNode, RunInstances, RunInstancesResult, ZoneResources)
from services.messages.node import ConsoleOutput, InstanceReport
from services.service_app import make_service_app


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
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

    app, recorder = make_service_app("cc", config.CLOUD_SECRET, lifespan=lifespan)
    cluster = Cluster(config, db, recorder)
    app.state.cluster = cluster
    auth = [Depends(app.state.internal_auth)]

    @app.exception_handler(ClusterFault)
    async def cluster_fault(_: Request, exc: ClusterFault) -> JSONResponse:
        return JSONResponse({"detail": exc.error.model_dump()}, status_code=exc.status)

    @app.get("/internal/nodes", dependencies=auth)
    async def list_nodes() -> NodeList:
        return cluster.nodes()

    @app.post("/internal/nodes", dependencies=auth)
    async def register_node(body: RegisterNode) -> NodeInfo:
        return await cluster.register(body.url)

    @app.delete("/internal/nodes/{name:path}", dependencies=auth)
    async def deregister_node(name: str) -> NodeInfo:
        return await cluster.deregister(name)

    @app.post("/internal/instances", dependencies=auth)
    async def run_instances(body: RunInstances) -> RunInstancesResult:
        recorder.record("received", f"run {len(body.instances)} {body.vm.name} "
                        f"(at least {body.min_count}) for {body.account_id}")
        return await cluster.run_instances(body)

    @app.get("/internal/instances", dependencies=auth)
    async def describe_instances() -> ClusterInstanceList:
        return cluster.instances()

    @app.post("/internal/instances/{instance_id}/terminate", dependencies=auth)
    async def terminate(instance_id: str) -> InstanceReport:
        return await cluster.terminate(instance_id)

    @app.post("/internal/instances/{instance_id}/reboot", dependencies=auth)
    async def reboot(instance_id: str) -> InstanceReport:
        return await cluster.reboot(instance_id)

    @app.get("/internal/instances/{instance_id}/console", dependencies=auth)
    async def console(instance_id: str) -> ConsoleOutput:
        return await cluster.console(instance_id)

    @app.post("/internal/resources", dependencies=auth)
    async def describe_resources(body: DescribeResources) -> ZoneResources:
        return cluster.resources(body)

    return app
