"""Persistence of the CC's registry and scheduler state. Behaviour lives in registry.py and
scheduler.py; this module only reads and writes rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select

from cc.models import InstanceRecord, Node, SchedulerState
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


class ClusterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def load_nodes(self) -> list[StoredNode]:
        with self._db.session() as session:
            nodes = {
                row.url: StoredNode(
                    url=row.url, source=row.source, position=row.position, node_id=row.node_id,
                    state=row.state, missed_polls=row.missed_polls, last_seen=row.last_seen,
                    last_error=row.last_error, idle_since=row.idle_since,
                    resources=(NodeResources.model_validate_json(row.resources_json)
                               if row.resources_json else None))
                for row in session.scalars(select(Node).order_by(Node.position))
            }
            for record in session.scalars(select(InstanceRecord)):
                report = InstanceReport.model_validate_json(record.report_json)
                nodes[record.node_url].instances[record.instance_id] = report
        return list(nodes.values())

    def save_node(self, node: StoredNode) -> None:
        with self._db.session() as session:
            row = session.get(Node, node.url) or Node(url=node.url)
            row.node_id = node.node_id
            row.source = node.source
            row.position = node.position
            row.state = node.state
            row.missed_polls = node.missed_polls
            row.last_seen = node.last_seen
            row.last_error = node.last_error
            row.idle_since = node.idle_since
            row.resources_json = node.resources.model_dump_json() if node.resources else None
            session.add(row)

    def delete_node(self, url: str) -> None:
        with self._db.session() as session:
            session.execute(delete(InstanceRecord).where(InstanceRecord.node_url == url))
            session.execute(delete(Node).where(Node.url == url))

    def replace_instances(self, url: str, reports: dict[str, InstanceReport]) -> None:
        with self._db.session() as session:
            session.execute(delete(InstanceRecord).where(InstanceRecord.node_url == url))
            # An instance that moved nodes (a re-run after a failure) keeps one row: the newest.
            if reports:
                session.execute(delete(InstanceRecord).where(InstanceRecord.instance_id.in_(list(reports))))
            session.add_all(InstanceRecord(instance_id=iid, node_url=url, report_json=r.model_dump_json())
                            for iid, r in reports.items())

    def save_instance(self, url: str, report: InstanceReport) -> None:
        with self._db.session() as session:
            row = session.get(InstanceRecord, report.instance_id)
            if row is None:
                row = InstanceRecord(instance_id=report.instance_id)
            row.node_url = url
            row.report_json = report.model_dump_json()
            session.add(row)

    def get_state(self, key: str) -> str | None:
        with self._db.session() as session:
            row = session.get(SchedulerState, key)
            return row.value if row else None

    def set_state(self, key: str, value: str) -> None:
        with self._db.session() as session:
            row = session.get(SchedulerState, key) or SchedulerState(key=key, value=value)
            row.value = value
            session.add(row)
