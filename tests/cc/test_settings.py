"""The CC's settings route behaviour (the CLC's cluster.* properties), in process: a policy
change takes effect for the next decision, a node asleep under POWERSAVE is woken when the new
policy would never offer it, and both settings outlive a restart of the CC."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cc.cluster import Cluster
from cc.faults import ClusterFault
from services.config import load_config
from services.db import Database
from services.messages.cluster import ClusterSettings
from services.messages.node import NodeResources
from services.tracing import TraceRecorder

MIGRATIONS = Path(__file__).resolve().parents[2] / "cc" / "migrations"
URL = "http://127.0.0.1:9/node-1"


def cluster_on(db: Database, home: Path) -> Cluster:
    config = load_config(EUCASIM_HOME=home, CLOUD_SECRET="s", NODES="", SCHEDPOLICY="POWERSAVE",
                         NC_POLLING_FREQUENCY=6)
    return Cluster(config, db, TraceRecorder("cc"), own_url="http://127.0.0.1:1")


def test_settings_apply_at_once_wake_what_powersave_left_asleep_and_are_kept(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    db.upgrade(MIGRATIONS)
    cluster = cluster_on(db, tmp_path)
    cluster.registry.register(URL)
    cluster.registry.record_resources(URL, NodeResources.model_validate({
        "node_id": "node-1", "power": "asleep", "hypervisor": "test:///default",
        **{k: {"cores": 2, "memory_mb": 1024, "disk_gb": 10} for k in ("max", "free", "host")}}))
    woken: list[str] = []

    async def wake(url: str) -> None:
        woken.append(url)

    cluster.power.wake = wake  # type: ignore[method-assign]

    async def change() -> ClusterSettings:
        with pytest.raises(ClusterFault) as refused:
            await cluster.change_settings(ClusterSettings(scheduling_policy="FASTEST"))
        assert refused.value.status == 400 and cluster.policy.name == "POWERSAVE"
        done = await cluster.change_settings(ClusterSettings(scheduling_policy="GREEDY", polling_period=2))
        await asyncio.gather(*cluster._waking)
        return done

    assert asyncio.run(change()) == ClusterSettings(scheduling_policy="GREEDY", polling_period=2)
    assert cluster.placer.policy.name == "GREEDY" and cluster.nodes().policy == "GREEDY"
    assert not cluster.power.enabled and woken == [URL]
    assert cluster.poller.interval == 2

    again = cluster_on(db, tmp_path)          # eucalyptus.conf still says POWERSAVE and 6 s
    assert again.settings() == ClusterSettings(scheduling_policy="GREEDY", polling_period=2)
    assert not again.power.enabled
    db.engine.dispose()
