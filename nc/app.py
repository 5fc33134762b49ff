"""The node controller's HTTP service: the internal API of services/messages/node.py.
`create_app` serves a single node at the process's root (real mode, or one simulated node):

    uvicorn --factory nc.app:create_app --port 8775

A simulated process serving several nodes is nc.multi:create_app; both are built here from one
NodeProcess, with the node routes defined once.

Event loops: every route is a sync function (Starlette runs it in its threadpool), since each
reads SQLite or calls the hypervisor; the lifespan's start, watch pass and shutdown run in a
worker thread (`asyncio.to_thread`). Nothing blocking runs on the loop itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from nc.hypervisor import HypervisorError
from nc.instances import NotFound, Refused
from nc.node_network import NodeNetwork
from nc.node import NodeRuntime, NodeSettings
from nc.process import NodeProcess
from nc.resources import Limits
from nc.states import TransitionError
from nc.volumes import VolumeFault
from services.config import CloudConfig, ConfigError, load_config
from services.messages.attach import ATTACH_ROUTE, DETACH_ROUTE, AttachDisk, DetachDisk, DiskAttachment
from services.messages.freeze import FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult, ThawFilesystems
from services.messages.node import (NC_CONSOLE_ROUTE, NC_DESCRIBE_ROUTE, NC_DIRECTORY_ROUTE,
                                    NC_INSTANCE_ROUTE, NC_INSTANCES_ROUTE, NC_REBOOT_ROUTE,
                                    NC_RESOURCES_ROUTE, NC_SLEEP_ROUTE, NC_TERMINATE_ROUTE,
                                    NC_WAKE_ROUTE, ConsoleOutput, DescribeNodes, InstanceList,
                                    InstanceReport, NodeDirectory, NodeProcessReport, NodeResources,
                                    RunInstance)
from services.service_app import make_service_app

log = logging.getLogger(__name__)


def require_secret(config: CloudConfig) -> str:
    if not config.CLOUD_SECRET:
        raise ConfigError("CLOUD_SECRET is empty: the NC cannot check who calls it "
                          "(`eucasim up` creates one; set it in eucalyptus.conf on every host)")
    return config.CLOUD_SECRET


def instance_root(config: CloudConfig) -> Path:
    return Path(config.INSTANCE_PATH or config.EUCASIM_HOME / "instances").absolute()


def single_node_settings(config: CloudConfig) -> NodeSettings:
    return NodeSettings(
        node_id=config.NC_NODE_ID or f"{config.PUBLIC_HOST}:{config.NC_PORT}", prefix="",
        hypervisor_uri=config.HYPERVISOR_URI, domain_type=config.HYPERVISOR_DOMAIN_TYPE,
        instance_root=instance_root(config), cache_mb=config.NC_CACHE_SIZE,
        limits=Limits(config.MAX_CORES, config.MAX_MEM, config.MAX_DISK),
        secret=require_secret(config),
        network=(NodeNetwork(config.VNET_LOCALIP or config.PUBLIC_HOST, config.VNET_PRIVINTERFACE)
                 if config.VNET_DRIVER == "linux" else None),
        ceph_keyring=config.NC_CEPH_KEYRING, ceph_conf=config.SC_CEPH_CONF)


# The one translation of the NC's behaviour errors into HTTP statuses the CC acts on, at the
# border; anything else is a bug and surfaces as one (500, with its traceback in the log).
_ANSWERS: dict[type[Exception], int] = {NotFound: 404, Refused: 409, TransitionError: 409, HypervisorError: 502}


def _answer(_request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in _ANSWERS.items() if isinstance(exc, kind))
    return JSONResponse({"detail": str(exc)}, status_code=status)


def _volume_answer(_request: Request, exc: Exception) -> JSONResponse:
    # A ClusterError-shaped detail: the CC passes the EC2 code on as it is.
    assert isinstance(exc, VolumeFault)
    return JSONResponse({"detail": {"code": exc.code, "message": exc.message}}, status_code=exc.status)


def install_answers(app: FastAPI) -> None:
    for error in _ANSWERS:
        app.add_exception_handler(error, _answer)
    app.add_exception_handler(VolumeFault, _volume_answer)


def node_router(resolve: Callable[..., NodeRuntime]) -> APIRouter:
    """The routes of one node; `resolve` is the dependency that says which node a request is
    for (the only one, or the one its URL prefix names)."""
    router = APIRouter()
    # A default, not an Annotated alias: with postponed annotations FastAPI resolves names in
    # the module's globals, where a local alias is not.
    this = Depends(resolve)

    @router.get(NC_RESOURCES_ROUTE)
    def resources(node: NodeRuntime = this) -> NodeResources:
        return node.resources()

    @router.get(NC_INSTANCES_ROUTE)
    def describe_instances(node: NodeRuntime = this) -> InstanceList:
        return InstanceList(node_id=node.node_id, instances=node.manager.describe())

    @router.post(NC_INSTANCES_ROUTE)
    def run_instance(body: RunInstance, node: NodeRuntime = this) -> InstanceReport:
        return node.manager.run(body, node.capacity())

    @router.get(NC_INSTANCE_ROUTE)
    def describe_instance(instance_id: str, node: NodeRuntime = this) -> InstanceReport:
        return node.manager.get(instance_id)

    @router.post(NC_TERMINATE_ROUTE)
    def terminate_instance(instance_id: str, node: NodeRuntime = this) -> InstanceReport:
        return node.manager.terminate(instance_id)

    @router.post(NC_REBOOT_ROUTE)
    def reboot_instance(instance_id: str, node: NodeRuntime = this) -> InstanceReport:
        return node.manager.reboot(instance_id)

    @router.get(NC_CONSOLE_ROUTE)
    def console_output(instance_id: str, node: NodeRuntime = this) -> ConsoleOutput:
        return node.manager.console(instance_id)

    @router.post(ATTACH_ROUTE)
    def attach_volume(instance_id: str, body: AttachDisk, node: NodeRuntime = this) -> DiskAttachment:
        return node.volumes.attach(instance_id, body)

    @router.post(DETACH_ROUTE)
    def detach_volume(instance_id: str, volume_id: str, body: DetachDisk,
                      node: NodeRuntime = this) -> DiskAttachment:
        return node.volumes.detach(instance_id, volume_id, body)

    @router.post(FREEZE_ROUTE)
    def freeze_filesystems(instance_id: str, body: FreezeFilesystems, node: NodeRuntime = this) -> FreezeResult:
        return node.quiescer.freeze(instance_id, body)

    @router.post(THAW_ROUTE)
    def thaw_filesystems(instance_id: str, body: ThawFilesystems, node: NodeRuntime = this) -> FreezeResult:
        return node.quiescer.thaw(instance_id, body)

    @router.post(NC_SLEEP_ROUTE)
    def sleep(node: NodeRuntime = this) -> NodeResources:
        return node.set_power("asleep")

    @router.post(NC_WAKE_ROUTE)
    def wake(node: NodeRuntime = this) -> NodeResources:
        return node.set_power("awake")

    return router


def add_process_routes(app: FastAPI, process: NodeProcess, *, directory: bool) -> None:
    """What the process answers at its root: one describe of every node (the CC's poll, and
    its subscription to pushed changes), and, in a simulated process, the node directory."""
    guard = [Depends(app.state.internal_auth)]

    @app.post(NC_DESCRIBE_ROUTE, dependencies=guard)
    def describe(body: DescribeNodes) -> NodeProcessReport:
        return process.describe(body)

    if directory:
        @app.get(NC_DIRECTORY_ROUTE, dependencies=guard)
        def nodes() -> NodeDirectory:
            return process.directory()


async def watch_loop(process: NodeProcess, every: float) -> None:
    """Every NC_POLLING_FREQUENCY seconds, in a worker thread: notice domains that died under
    running instances, and forget instances terminated long ago."""
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(process.watch_pass)
        except Exception:  # noqa: BLE001 - the loop must outlive one bad pass; the log keeps the bug
            log.exception("NC watch pass failed")


@contextlib.asynccontextmanager
async def serving(process: NodeProcess, every: float) -> AsyncIterator[None]:
    """Start (migrate + reconcile) the process's nodes, run the watch loop, and stop cleanly."""
    await asyncio.to_thread(process.start)
    task = asyncio.create_task(watch_loop(process, every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(process.close)


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
    settings = single_node_settings(config)
    app, recorder = make_service_app("nc", settings.secret, config.LOG_LEVEL)
    process = NodeProcess([settings], config.database_url("nc"), settings.secret, recorder,
                          instance_root(config))
    runtime = process.node("")
    app.state.process = process
    app.state.node = runtime
    install_answers(app)
    app.include_router(node_router(lambda: runtime), dependencies=[Depends(app.state.internal_auth)])
    add_process_routes(app, process, directory=False)
    every = config.NC_POLLING_FREQUENCY
    app.router.lifespan_context = lambda _app: serving(process, every)
    return app


__all__ = ["create_app", "node_router", "add_process_routes", "install_answers", "serving"]
