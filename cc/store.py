"""Persistence of the CC's registry and scheduler state. Behaviour lives in registry.py and
scheduler.py; this module only reads and writes rows.

Writes come in batches (`write`): the registry collects what changed and the cluster writes it
in one transaction off the event loop, so a round that heard from 20,000 nodes costs one commit,
not 20,000."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select

from cc.models import InstanceRecord, NodeRow, SchedulerState
from services.clock import aware
from services.db import Database
from services.messages.node import InstanceReport, NodeResources


@dataclass
class StoredNode:
    url: str
    source: str
    position: int
    node_id: str | None = None
    state: str = "down"
    missed_polls: int = 0
    last_seen: datetime | None = None
    last_error: str | None = None
    resources: NodeResources | None = None
    idle_since: datetime | None = None
    instances: dict[str, InstanceReport] = field(default_factory=dict)


# The tables themselves: bulk inserts through them skip the ORM's per-row bookkeeping, which
# cost more than SQLite did for a batch of thousands of instances.
NODES = NodeRow.__table__
INSTANCES = InstanceRecord.__table__


class ClusterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def load_nodes(self) -> list[StoredNode]:
        with self._db.session() as session:
            nodes = {
                row.url: StoredNode(
                    url=row.url, source=row.source, position=row.position, node_id=row.node_id,
                    state=row.state, missed_polls=row.missed_polls, last_seen=aware(row.last_seen),
                    last_error=row.last_error, idle_since=aware(row.idle_since),
                    resources=(NodeResources.model_validate_json(row.resources_json)
                               if row.resources_json else None))
                for row in session.scalars(select(NodeRow).order_by(NodeRow.position))
            }
            for record in session.scalars(select(InstanceRecord)):
                report = InstanceReport.model_validate_json(record.report_json)
                nodes[record.node_url].instances[record.instance_id] = report
        return list(nodes.values())

    def write(self, nodes: Sequence[StoredNode], deleted: Sequence[str] = ()) -> None:
        """Save `nodes` (each with all its instances) and delete the nodes at `deleted`, in one
        transaction of bulk statements (no ORM objects: a batch may hold thousands of rows).
        Blocking: call it from a thread, never on the event loop."""
        if not nodes and not deleted:
            return
        urls = [n.url for n in nodes] + list(deleted)
        # An instance that moved nodes (a re-run after a failure) keeps one row: the newest.
        moved = [iid for n in nodes for iid in n.instances]
        with self._db.session() as session:
            for chunk in _chunks(urls):
                session.execute(delete(InstanceRecord).where(InstanceRecord.node_url.in_(chunk)))
            for chunk in _chunks(moved):
                session.execute(delete(InstanceRecord).where(InstanceRecord.instance_id.in_(chunk)))
            for chunk in _chunks(urls):
                session.execute(delete(NodeRow).where(NodeRow.url.in_(chunk)))
            if nodes:
                session.execute(insert(NODES), [{
                    "url": n.url, "node_id": n.node_id, "source": n.source, "position": n.position,
                    "state": n.state, "missed_polls": n.missed_polls, "last_seen": n.last_seen,
                    "last_error": n.last_error, "idle_since": n.idle_since,
                    "resources_json": n.resources.model_dump_json() if n.resources else None,
                } for n in nodes])
            rows = [{"instance_id": iid, "node_url": n.url, "report_json": r.model_dump_json()}
                    for n in nodes for iid, r in n.instances.items()]
            if rows:
                session.execute(insert(INSTANCES), rows)

    def get_state(self, key: str) -> str | None:
        with self._db.session() as session:
            row = session.get(SchedulerState, key)
            return row.value if row else None

    def set_state(self, key: str, value: str) -> None:
        with self._db.session() as session:
            row = session.get(SchedulerState, key) or SchedulerState(key=key, value=value)
            row.value = value
            session.add(row)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """SQLite limits the variables of one statement; IN lists go in slices."""
    return [items[i:i + size] for i in range(0, len(items), size)]
