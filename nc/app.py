"""The node controller's HTTP service: the internal API of services/messages/node.py over one
node. `create_app` serves a single node (real mode, or one simulated node):

    uvicorn --factory nc.app:create_app --port 8775

A simulated process serving several nodes is nc.multi:create_app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException

from nc.hypervisor import HypervisorError
from nc.instances import NotFound, Refused
from nc.node import NodeRuntime, NodeSettings
from nc.resources import Limits
from nc.states import TransitionError
from services.config import CloudConfig, ConfigError, load_config
from services.messages.node import (ConsoleOutput, InstanceList, InstanceReport, NodeResources,
                                    RunInstance)
from services.service_app import make_service_app

BACKGROUND_WORKERS = 4


def require_secret(config: CloudConfig) -> str:
    if not config.CLOUD_SECRET:
        raise ConfigError("CLOUD_SECRET is empty: the NC cannot check who calls it "
                          "(`eucasim up` creates one; set it in eucalyptus.conf on every host)")
    return config.CLOUD_SECRET


def instance_root(config: CloudConfig) -> Path:
    return Path(config.INSTANCE_PATH or config.EUCASIM_HOME / "instances").absolute()


def single_node_settings(config: CloudConfig) -> NodeSettings:
    return NodeSettings(
        node_id=config.NC_NODE_ID or f"{config.PUBLIC_HOST}:{config.NC_PORT}",
        hypervisor_uri=config.HYPERVISOR_URI, domain_type=config.HYPERVISOR_DOMAIN_TYPE,
        database_url=config.database_url("nc"), instance_root=instance_root(config),
        cache_mb=config.NC_CACHE_SIZE,
        limits=Limits(config.MAX_CORES, config.MAX_MEM, config.MAX_DISK),
        secret=require_secret(config))


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """Behaviour errors -> HTTP statuses the CC can act on."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (Refused, TransitionError) as exc:
        raise HTTPException(409, str(exc)) from None
    except HypervisorError as exc:
        raise HTTPException(502, str(exc)) from None


def add_node_routes(app: FastAPI, node: Callable[[], NodeRuntime]) -> None:
    guard = [Depends(app.state.internal_auth)]

    @app.get("/internal/resources", dependencies=guard)
    def resources() -> NodeResources:
        return node().resources()

    @app.get("/internal/instances", dependencies=guard)
    def describe_instances() -> InstanceList:
        runtime = node()
        return InstanceList(node_id=runtime.node_id, instances=runtime.manager.describe())

    @app.post("/internal/instances", dependencies=guard)
    def run_instance(body: RunInstance) -> InstanceReport:
        runtime = node()
        with _answers():
            return runtime.manager.run(body, runtime.capacity())

    @app.get("/internal/instances/{instance_id}", dependencies=guard)
    def describe_instance(instance_id: str) -> InstanceReport:
        with _answers():
            return node().manager.get(instance_id)

    @app.post("/internal/instances/{instance_id}/terminate", dependencies=guard)
    def terminate_instance(instance_id: str) -> InstanceReport:
        with _answers():
            return node().manager.terminate(instance_id)

    @app.post("/internal/instances/{instance_id}/reboot", dependencies=guard)
    def reboot_instance(instance_id: str) -> InstanceReport:
        with _answers():
            return node().manager.reboot(instance_id)

    @app.get("/internal/instances/{instance_id}/console", dependencies=guard)
    def console_output(instance_id: str) -> ConsoleOutput:
        with _answers():
            return node().manager.console(instance_id)

    @app.post("/internal/power/{action}", dependencies=guard)
    def power(action: str) -> NodeResources:
        if action not in ("sleep", "wake"):
            raise HTTPException(404, f"no power action {action!r}: use sleep or wake")
        with _answers():
            return node().set_power("asleep" if action == "sleep" else "awake")


async def watch_loop(nodes: list[NodeRuntime], every: float) -> None:
    """Notice domains that die under running instances, every NC_POLLING_FREQUENCY seconds."""
    while True:
        await asyncio.sleep(every)
        for runtime in nodes:
            try:
                await asyncio.to_thread(runtime.watch)
            except Exception as exc:  # noqa: BLE001 - one bad pass must not end the loop
                runtime.recorder.record("error", f"watch pass failed: {exc!r}", request_id="nc-watch")


@contextlib.asynccontextmanager
async def serving(nodes: list[NodeRuntime], executor: ThreadPoolExecutor,
                  every: float) -> AsyncIterator[None]:
    """Start (migrate + reconcile) every node, run the watch loop, and stop cleanly."""
    # One after another: Alembic keeps its migration context in module globals.
    for runtime in nodes:
        await asyncio.to_thread(runtime.start)
    task = asyncio.create_task(watch_loop(nodes, every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        executor.shutdown(wait=True, cancel_futures=True)
        for runtime in nodes:
            runtime.close()


def build_node(settings: NodeSettings, executor: ThreadPoolExecutor) -> tuple[FastAPI, NodeRuntime]:
    app, recorder = make_service_app("nc", settings.secret)
    runtime = NodeRuntime(settings, recorder, executor)
    app.state.node = runtime
    add_node_routes(app, lambda: runtime)
    return app, runtime


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
    settings = single_node_settings(config)
    executor = ThreadPoolExecutor(BACKGROUND_WORKERS, thread_name_prefix="nc-launch")
    app, runtime = build_node(settings, executor)
    every = config.NC_POLLING_FREQUENCY
    app.router.lifespan_context = lambda _app: serving([runtime], executor, every)
    return app


__all__ = ["create_app", "build_node", "add_node_routes", "serving"]
