"""Simulated mode: one NC process serving NC_SIMULATED_NODES nodes, each under its own URL
prefix (/node-1 … /node-N) with its own private libvirt test hypervisor (test:///<node XML>),
resources, instance directory and database — so one laptop can simulate a zone.

    NC_SIMULATED_NODES=3 NC_SIMULATED_MAX_CORES=2,4,8 uvicorn --factory nc.multi:create_app --port 8775

Real mode is one node per process (nc.app:create_app)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import Depends, FastAPI

from nc.app import BACKGROUND_WORKERS, build_node, instance_root, require_secret, serving
from nc.node import NodeRuntime, NodeSettings, write_node_xml
from nc.resources import Limits
from services.config import CloudConfig, ConfigError, load_config
from services.messages.node import NodeDirectory, NodeEntry
from services.service_app import make_service_app


def _per_node(values: str, index: int, fallback: int | None, key: str) -> int | None:
    """Entry `index` of a comma list such as NC_SIMULATED_MAX_CORES="2,4,8"."""
    entries = [v.strip() for v in values.split(",")] if values.strip() else []
    if index >= len(entries) or not entries[index]:
        return fallback
    try:
        value = int(entries[index])
    except ValueError:
        raise ConfigError(f"{key}: entry {index + 1} ({entries[index]!r}) is not a whole number") from None
    if value < 1:
        raise ConfigError(f"{key}: entry {index + 1} must be at least 1")
    return value


def node_settings(config: CloudConfig, number: int) -> NodeSettings:
    name = f"node-{number}"
    home = config.EUCASIM_HOME.absolute() / "nc" / name
    index = number - 1
    return NodeSettings(
        node_id=name,
        hypervisor_uri=f"test://{write_node_xml(home / 'node.xml')}",
        domain_type="test",
        database_url=config.database_url(f"nc-{name}"),
        instance_root=instance_root(config) / name,
        cache_mb=config.NC_CACHE_SIZE,
        limits=Limits(_per_node(config.NC_SIMULATED_MAX_CORES, index, config.MAX_CORES, "NC_SIMULATED_MAX_CORES"),
                      _per_node(config.NC_SIMULATED_MAX_MEM, index, config.MAX_MEM, "NC_SIMULATED_MAX_MEM"),
                      _per_node(config.NC_SIMULATED_MAX_DISK, index, config.MAX_DISK, "NC_SIMULATED_MAX_DISK")),
        secret=require_secret(config))


def create_app(config: CloudConfig | None = None) -> FastAPI:
    config = config or load_config()
    if not config.HYPERVISOR_URI.startswith("test:"):
        raise ConfigError(f"HYPERVISOR_URI={config.HYPERVISOR_URI}: several nodes in one process are "
                          "simulated only (test:// hypervisor); run one NC per host in real mode")
    secret = require_secret(config)
    app, _recorder = make_service_app("nc", secret)
    executor = ThreadPoolExecutor(BACKGROUND_WORKERS, thread_name_prefix="nc-launch")
    runtimes: list[NodeRuntime] = []
    for number in range(1, config.NC_SIMULATED_NODES + 1):
        node_app, runtime = build_node(node_settings(config, number), executor)
        app.mount(f"/node-{number}", node_app)
        runtimes.append(runtime)
    directory = NodeDirectory(nodes=[NodeEntry(node_id=r.node_id, prefix=f"/{r.node_id}") for r in runtimes])

    @app.get("/internal/nodes", dependencies=[Depends(app.state.internal_auth)])
    def nodes() -> NodeDirectory:
        return directory

    every = config.NC_POLLING_FREQUENCY
    app.router.lifespan_context = lambda _app: serving(runtimes, executor, every)
    return app
