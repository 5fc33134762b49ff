"""Simulated mode: one NC process serving NC_SIMULATED_NODES nodes, each under its own URL
prefix (/node-1 … /node-N) with its own hypervisor (a private libvirt test driver,
test:///<node XML>, or with HYPERVISOR_URI=fake:// an in-memory one), resources and instance
folder — so one laptop can simulate a zone.

    NC_SIMULATED_NODES=3 NC_SIMULATED_MAX_CORES=2,4,8 uvicorn --factory nc.multi:create_app --port 8775

The nodes share the process's database, launch threads and trace recorder (answered at the
root), and one set of routes whose `/node-N` prefix picks the node: a request costs a dict
lookup, not a walk over N mounted apps. Real mode is one node per process (nc.app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from nc.faults import FAULTS
from services.messages.faults import FAULTS_ROUTE, FaultList, InjectFault

from nc.app import (add_process_routes, install_answers, instance_root, node_router, require_secret,
                    serving)
from nc.hypervisor import is_fake
from nc.node import NodeRuntime, NodeSettings, write_node_xml
from nc.process import NodeProcess
from nc.resources import Limits
from services.config import CloudConfig, ConfigError, load_config
from services.service_app import make_service_app


def _per_node(values: list[str], index: int, fallback: int | None, key: str) -> int | None:
    """Entry `index` of a comma list such as NC_SIMULATED_MAX_CORES="2,4,8", split once."""
    if index >= len(values) or not values[index]:
        return fallback
    try:
        value = int(values[index])
    except ValueError:
        raise ConfigError(f"{key}: entry {index + 1} ({values[index]!r}) is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{key}: entry {index + 1} must be at least 1")
    return value


def _entries(values: str) -> list[str]:
    return [v.strip() for v in values.split(",")] if values.strip() else []


def node_settings(config: CloudConfig) -> list[NodeSettings]:
    secret = require_secret(config)
    root = instance_root(config)
    fake = is_fake(config.HYPERVISOR_URI)
    cores, memory, disk = (_entries(config.NC_SIMULATED_MAX_CORES), _entries(config.NC_SIMULATED_MAX_MEM),
                           _entries(config.NC_SIMULATED_MAX_DISK))
    nodes = []
    for index in range(config.NC_SIMULATED_NODES):
        name = f"node-{index + 1}"
        if fake:
            uri = "fake://"     # each node its own private in-memory hypervisor
        else:
            uri = f"test://{write_node_xml(config.EUCASIM_HOME.absolute() / 'nc' / name / 'node.xml')}"
        nodes.append(NodeSettings(
            node_id=name, prefix=f"/{name}", hypervisor_uri=uri, domain_type="test",
            instance_root=root / name, cache_mb=config.NC_CACHE_SIZE,
            limits=Limits(_per_node(cores, index, config.MAX_CORES, "NC_SIMULATED_MAX_CORES"),
                          _per_node(memory, index, config.MAX_MEM, "NC_SIMULATED_MAX_MEM"),
                          _per_node(disk, index, config.MAX_DISK, "NC_SIMULATED_MAX_DISK")),
            secret=secret))
    return nodes


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
    if not (config.HYPERVISOR_URI.startswith("test:") or is_fake(config.HYPERVISOR_URI)):
        raise ConfigError(f"HYPERVISOR_URI={config.HYPERVISOR_URI}: several nodes in one process are "
                          "simulated only (test:// or fake:// hypervisor); run one NC per host in real mode")
    secret = require_secret(config)
    app, recorder = make_service_app("nc", secret, config.LOG_LEVEL)
    process = NodeProcess(node_settings(config), config.database_url("nc"), secret, recorder,
                          instance_root(config))
    app.state.process = process
    install_answers(app)

    def by_prefix(node: str) -> NodeRuntime:
        return process.node(f"/{node}")         # NotFound -> 404, as every NC error, at the border

    guard = [Depends(app.state.internal_auth)]
    add_process_routes(app, process, directory=True)

    @app.middleware("http")
    async def down_nodes(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        node = request.url.path.split("/", 2)[1] if request.url.path.count("/") >= 2 else ""
        if node and FAULTS.is_down(node):
            return JSONResponse({"detail": f"{node} is down (injected fault)"}, status_code=503)
        return await call_next(request)

    @app.get(FAULTS_ROUTE, dependencies=guard)
    def list_faults() -> FaultList:
        return FAULTS.listing()

    @app.post(FAULTS_ROUTE, dependencies=guard)
    def inject_fault(body: InjectFault) -> FaultList:
        if f"/{body.target}" not in process.nodes:
            raise HTTPException(404, f"this NC process has no node {body.target}")
        FAULTS.inject(body)
        return FAULTS.listing()

    @app.delete(FAULTS_ROUTE, dependencies=guard)
    def clear_faults(kind: str | None = None, target: str | None = None) -> FaultList:
        FAULTS.clear(kind, target)
        return FAULTS.listing()

    @app.get("/{node}/internal/health")
    def node_health(runtime: NodeRuntime = Depends(by_prefix)) -> dict[str, str]:
        return {"service": "nc", "status": "ok", "node": runtime.node_id}

    app.include_router(node_router(by_prefix), prefix="/{node}", dependencies=guard)
    every = config.NC_POLLING_FREQUENCY
    app.router.lifespan_context = lambda _app: serving(process, every)
    return app
