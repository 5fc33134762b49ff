"""Every node one NC process serves, and what they share: one database (rows keyed by the
node's URL prefix), one pool of launch threads, one trace recorder, one event pusher, and the
machine that simulates them. A single-node process is the case of one node at prefix "".

Whatever runs over all nodes (describe, the watch pass, start) reads the database once for
the whole process and visits only the nodes that have something to do, so a process of
20,000 idle simulated nodes answers a describe and a watch pass in one query each. A describe
with the cursor of an earlier answer reads only what changed since (nc.changes): the CC's
poll of 20,000 nodes and 40,000 instances is then a few rows, not all of them."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nc.changes import ChangeLog, Delta
from nc.events import EventPusher
from nc.faults import FAULTS
from nc.instances import NotFound
from nc.models import InstanceRecord
from nc.node import NodeRuntime, NodeSettings
from nc.instances import FORGET_SEEN
from nc.resources import SimulatingMachine, booked_sizes
from nc.states import LIVE_STATES
from services.clock import utcnow
from services.db import Database
from services.messages.node import (DescribeNodes, InstanceReport, NodeDirectory, NodeEntry,
                                    NodeProcessReport, NodeResources, NodeStatus, Resources)
from services.tracing import TraceRecorder

MIGRATIONS = Path(__file__).parent / "migrations"
BACKGROUND_WORKERS = 4
# Alembic keeps its migration context in module globals: one upgrade at a time per process.
_UPGRADE_LOCK = threading.Lock()
# Ids per IN (...) of a delta's read; above DELTA_READ_ALL changed instances, one read of all.
ID_CHUNK = 500
DELTA_READ_ALL = 5_000


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
        self.changes = ChangeLog()
        self.answers = {"whole": 0, "delta": 0}     # describes answered, by kind (tests read it)
        self.nodes: dict[str, NodeRuntime] = {}
        for settings in nodes:
            self.nodes[settings.prefix] = NodeRuntime(settings, self.db, recorder, self.executor,
                                                      self.machine, self._changed,
                                                      on_power=self.changes.node_changed)

    def _changed(self, prefix: str, report: InstanceReport) -> None:
        """An instance's change is committed: numbered for deltas, queued for the push."""
        self.changes.instance_changed(prefix, report.instance_id)
        self.pusher.changed(prefix, report)

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
        instances forgotten (InstanceManager.purge_terminated); only on nodes that have such
        instances."""
        changed: list[str] = []
        for prefix in self._prefixes(InstanceRecord.state == "running"):
            if prefix in self.nodes:
                changed += self.nodes[prefix].watch()
        cutoff = utcnow() - FORGET_SEEN
        for prefix in self._prefixes(InstanceRecord.state == "terminated", InstanceRecord.updated_at < cutoff):
            if prefix in self.nodes:
                forgotten = self.nodes[prefix].manager.purge_terminated(self.changes.seen_by_caller)
                if forgotten:
                    self.changes.forgotten(prefix, forgotten)
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
        """Every node as of one read: its figures and every instance it keeps; with `since`
        (a cursor of this process), only what changed since. With `subscribe`, changes are
        pushed there from now on (the subscription is remembered before the read, so no
        change falls between the answer and the first push)."""
        if request.subscribe is not None:
            self.pusher.subscribe(request.subscribe)
        since = self.changes.parse(request.since)
        # Taken before the read: a change committed after it is numbered after it too, so
        # the next delta carries it (again, at worst).
        cursor = self.changes.cursor()
        if since is None:
            self.answers["whole"] += 1
            return self._whole(cursor)
        self.answers["delta"] += 1
        self.changes.acknowledge(since)
        return self._delta(cursor, self.changes.since(since), request.whole)

    def _down(self) -> set[str]:
        return {f"/{f.target}" for f in FAULTS.listing().faults if f.kind == "node-down"}

    def _whole(self, cursor: str) -> NodeProcessReport:
        with self.db.session() as session:
            records = list(session.scalars(select(InstanceRecord).order_by(InstanceRecord.launched_at)))
        by_node: dict[str, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_node[record.prefix].append(record)
        statuses = []
        down = self._down()
        for prefix, runtime in self.nodes.items():
            if prefix in down:
                continue        # a dead host answers nothing: the CC counts a missed poll
            mine = by_node.get(prefix, [])
            booked = booked_sizes((r.cores, r.memory_mb, r.disk_gb) for r in mine if r.state in LIVE_STATES)
            statuses.append(NodeStatus(prefix=prefix, resources=runtime.resources(booked),
                                       instances=runtime.manager.reports(mine)))
        return NodeProcessReport(nodes=statuses, cursor=cursor, absent=sorted(down & self.nodes.keys()))

    def _delta(self, cursor: str, delta: Delta, whole: list[str]) -> NodeProcessReport:
        down = self._down()
        absent = (down | {p for p in whole if p not in self.nodes}) & (set(whole) | self.nodes.keys())
        whole_nodes = {p for p in whole if p in self.nodes and p not in down}
        changed_nodes = {p for p in delta.nodes if p in self.nodes and p not in down} - whole_nodes
        ids = [iid for p in changed_nodes for iid in delta.instances.get(p, [])]
        records = self._changed_records(ids, whole_nodes)
        by_node: dict[str, list[InstanceRecord]] = defaultdict(list)
        for record in records:
            by_node[record.prefix].append(record)
        booked = self._booked(changed_nodes | whole_nodes)
        statuses = []
        for prefix in sorted(changed_nodes | whole_nodes, key=lambda p: self.nodes[p].settings.node_id):
            runtime = self.nodes[prefix]
            complete = prefix in whole_nodes
            mine = by_node.get(prefix, [])
            statuses.append(NodeStatus(
                prefix=prefix, resources=runtime.resources(booked.get(prefix, _ZERO)),
                instances=runtime.manager.reports(mine), complete=complete,
                gone=[] if complete else delta.gone.get(prefix, [])))
        return NodeProcessReport(nodes=statuses, cursor=cursor, delta=True, absent=sorted(absent))

    def _changed_records(self, ids: list[str], whole: set[str]) -> list[InstanceRecord]:
        """The records of instances `ids` (where they still exist) and every record of the
        nodes `whole`, oldest first."""
        if not ids and not whole:
            return []
        wanted = set(ids)
        with self.db.session() as session:
            if len(ids) > DELTA_READ_ALL:
                records = [r for r in session.scalars(select(InstanceRecord))
                           if r.instance_id in wanted or r.prefix in whole]
            else:
                records = []
                for start in range(0, len(ids), ID_CHUNK):
                    records += session.scalars(select(InstanceRecord).where(
                        InstanceRecord.instance_id.in_(ids[start:start + ID_CHUNK])))
                whole_list = sorted(whole)
                for start in range(0, len(whole_list), ID_CHUNK):
                    records += session.scalars(select(InstanceRecord).where(
                        InstanceRecord.prefix.in_(whole_list[start:start + ID_CHUNK])))
        unique = {r.instance_id: r for r in records}
        return sorted(unique.values(), key=lambda r: r.launched_at)

    def _booked(self, prefixes: set[str]) -> dict[str, Resources]:
        """What the live instances of each of `prefixes` book, read by node (an index look-up
        per chunk of nodes, not a scan of every live instance: a delta names a few nodes of
        thousands). One row per node and instance size; each instance books its own swap,
        so sizes are summed per instance, not once per node."""
        wanted = sorted(prefixes)
        sizes: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        with self.db.session() as session:
            for start in range(0, len(wanted), ID_CHUNK):
                query = (select(InstanceRecord.prefix, InstanceRecord.cores, InstanceRecord.memory_mb,
                                InstanceRecord.disk_gb, func.count())
                         .where(InstanceRecord.prefix.in_(wanted[start:start + ID_CHUNK]),
                                InstanceRecord.state.in_(LIVE_STATES))
                         .group_by(InstanceRecord.prefix, InstanceRecord.cores, InstanceRecord.memory_mb,
                                   InstanceRecord.disk_gb))
                for prefix, cores, memory, disk, count in session.execute(query):
                    sizes[prefix] += [(cores, memory, disk)] * count
        return {prefix: booked_sizes(each) for prefix, each in sizes.items()}


_ZERO = Resources(cores=0, memory_mb=0, disk_gb=0)
