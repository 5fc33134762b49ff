"""Waking a real (non-simulated) node: POWER_WAKE_COMMAND runs with the node's host filled
in, then the CC waits for the node to answer awake. The node here is a simulated NC that
claims a qemu hypervisor; the command is a shell line that leaves a mark."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from cc.ncclient import NodeClients
from cc.power import PowerManager
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from cc.store import ClusterStore
from services.db import Database
from services.messages.node import NodeResources
from services.tracing import TraceRecorder
from tests.cc.conftest import SECRET

MIGRATIONS = Path(__file__).resolve().parents[2] / "cc" / "migrations"


def test_a_real_node_is_woken_by_the_wake_command(shared_nc, tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    db.upgrade(MIGRATIONS)
    url = shared_nc.node_urls[0]
    registry = NodeRegistry(ClusterStore(db).load_nodes(), [url], 8775)
    asleep = NodeResources.model_validate({
        "node_id": "node-1", "power": "asleep", "hypervisor": "qemu:///system",
        **{k: {"cores": 2, "memory_mb": 1024, "disk_gb": 10} for k in ("max", "free", "host")}})
    registry.record_resources(url, asleep)
    mark = tmp_path / "woken"
    command = f"sh -c {shlex.quote(f'echo {{host}} {{node}} > {mark}')}"

    async def wake() -> None:
        clients = NodeClients(SECRET, timeout=5)
        power = PowerManager(registry, clients, Reservations(), TraceRecorder("cc"), enabled=True,
                             idle_threshold=60, wake_command=command, wake_timeout=20)
        try:
            await power.wake(url)
        finally:
            await clients.aclose()

    asyncio.run(wake())
    assert mark.read_text().split() == ["127.0.0.1", "node-1"]
    assert registry.find(url).state == "up"
    db.engine.dispose()
