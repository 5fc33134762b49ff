"""Every node one NC process serves, and what they share: one database (rows keyed by the
node's URL prefix), one pool of launch threads, one trace recorder, one event pusher, and the
machine that simulates them. A single-node process is the case of one node at prefix "".

Whatever runs over all nodes (describe, the watch pass, start) reads the database once for
the whole process and visits only the nodes that have something to do, so a process of
20,000 idle simulated nodes answers a describe and a watch pass in one query each."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from nc.events import EventPusher
from nc.faults import FAULTS
from nc.instances import NotFound
from nc.models import InstanceRecord
from nc.node import NodeRuntime, NodeSettings
from nc.resources import SimulatingMachine, booked_sizes
from nc.states import LIVE_STATES
from services.clock import KEEP_TERMINATED, utcnow
from services.db import Database
from services.messages.node import (DescribeNodes, NodeDirectory, NodeEntry, NodeProcessReport,
                                    NodeResources, NodeStatus)
from services.tracing import TraceRecorder

MIGRATIONS = Path(__file__).parent / "migrations"
BACKGROUND_WORKERS = 4
# Alembic keeps its migration context in module globals: one upgrade at a time per process.
_UPGRADE_LOCK = threading.Lock()


class SerialDatabase(Database):
    """The process's database with one session at a time. SQLite has one writer anyway; when
    several launch threads write through their own connections, the losers wait in SQLite's
    busy handler, which sleeps in steps of milliseconds. Taking turns in the process instead
    costs a lock hand-over (1,000 launches over 100 nodes: 48 s -> see README)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._turn = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._turn, super().session() as session:
            yield session


class NodeProcess:
    def __init__(self, nodes: list[NodeSettings], database_url: str, secret: str,
                 recorder: TraceRecorder, instance_root: Path) -> None:
        self.db = SerialDatabase(database_url)
        self.recorder = recorder
        self.executor = ThreadPoolExecutor(BACKGROUND_WORKERS, thread_name_prefix="nc-launch")
        self.machine = SimulatingMachine(instance_root)
        self.pusher = EventPusher(secret, self._resources_of)
        self.nodes: dict[str, NodeRuntime] = {}
        for settings in nodes:
            self.nodes[settings.prefix] = NodeRuntime(settings, self.db, recorder, self.executor,
                                                      self.machine, self.pusher.changed)

    def node(self, prefix: str) -> NodeRuntime:
        runtime = self.nodes.get(prefix)
        if runtime is None:
            raise NotFound(f"no node at {prefix or '/'} in this NC process")
        return runtime

    def _resources_of(self, prefix: str) -> NodeResources:
        return self.nodes[prefix].resources()

    def directory(self) -> NodeDirectory:
        return NodeDirectory(nodes=[NodeEntry(node_id=n.node_id, prefix=n.prefix) for n in self.nodes.values()])

    # ----- the process's life ----------------------------------------------------------------

    def start(self) -> None:
        """Migrate once, then reconcile each node that has live records or domains."""
        with _UPGRADE_LOCK:
            self.db.upgrade(MIGRATIONS)
        live = self._prefixes(InstanceRecord.state.in_(LIVE_STATES))
        for prefix, runtime in self.nodes.items():
            if prefix in live or runtime.hypervisor.list_ours():
                runtime.reconcile()

    def watch_pass(self) -> list[str]:
        """One pass of the loop: domains dead under running instances, and terminated
        instances past KEEP_TERMINATED forgotten; only on nodes that have such instances."""
        changed: list[str] = []
        for prefix in self._prefixes(InstanceRecord.state == "running"):
            if prefix in self.nodes:
                changed += self.nodes[prefix].watch()
        cutoff = utcnow() - KEEP_TERMINATED
        for prefix in self._prefixes(InstanceRecord.state == "terminated", InstanceRecord.updated_at < cutoff):
            if prefix in self.nodes:
                self.nodes[prefix].manager.purge_terminated()
        return changed

    def _prefixes(self, *where: object) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(InstanceRecord.prefix).where(*where).distinct()))  # type: ignore[arg-type]

    def close(self) -> None:
        self.pusher.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        for runtime in self.nodes.values():
            runtime.close()
        self.db.engine.dispose()

    # ----- describe ----------------------------------------------------------------------------

    def describe(self, request: DescribeNodes) -> NodeProcessReport:
        """Every node as of one read: its figures and every instance it keeps. With
        `subscribe`, changes are pushed there from now on (the subscription is remembered
        before the read, so no change falls between the answer and the first push)."""
        if request.subscribe is not None:
            self.pusher.subscribe(request.subscribe)
        with self.db.session() as session:
            records = list(session.scalars(select(InstanceRecord).order_by(InstanceRecord.launched_at)))
        by_node: dict[str, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_node[record.prefix].append(record)
        statuses = []
        for prefix, runtime in self.nodes.items():
            if FAULTS.is_down(prefix.strip("/")):
                continue        # a dead host answers nothing: the CC counts a missed poll
            mine = by_node.get(prefix, [])
            booked = booked_sizes((r.cores, r.memory_mb, r.disk_gb) for r in mine if r.state in LIVE_STATES)
            statuses.append(NodeStatus(prefix=prefix, resources=runtime.resources(booked),
                                       instances=runtime.manager.reports(mine)))
        return NodeProcessReport(nodes=statuses)
