"""The zone's nodes as the CC knows them: where they are, whether they answer, what they
last reported. A node that misses MISSED_POLLS_FOR_DOWN polls in a row is `down`; its
instances stay known (with a reason) and it is `up` again as soon as it answers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from cc.store import ClusterStore, StoredNode
from services.messages.cluster import ClusterInstance, NodeInfo, NodeState
from services.messages.node import InstanceReport, NodeResources, Resources, StateReason

MISSED_POLLS_FOR_DOWN = 3
ZERO = Resources(cores=0, memory_mb=0, disk_gb=0)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def node_url(entry: str, nc_port: int) -> str:
    """NODES lists hosts as Eucalyptus does (`10.0.0.5`), or `host:port`, or full URLs."""
    entry = entry.strip().rstrip("/")
    if "://" not in entry:
        entry = f"http://{entry}"
    parts = urlsplit(entry)
    if parts.port is None:
        entry = entry.replace(parts.netloc, f"{parts.netloc}:{nc_port}", 1)
    return entry


@dataclass(frozen=True)
class NodeView:
    """What a scheduling policy sees of one node: free is the NC's figure minus the CC's own
    reservations not yet visible in it."""
    index: int
    name: str
    url: str
    state: NodeState
    free: Resources
    max: Resources


class Node(StoredNode):
    # When a call (run, wake, sleep) last told us something newer than a poll in flight may
    # know (monotonic seconds); such a poll's answer must not undo it.
    changed_at: float = 0.0

    @property
    def name(self) -> str:
        return self.node_id or self.url

    def live_instances(self) -> list[InstanceReport]:
        return [r for r in self.instances.values() if _is_live(r)]


def _persisted(node: StoredNode) -> tuple[object, ...]:
    return (node.node_id, node.state, node.missed_polls, node.last_error, node.resources)


def _is_live(report: InstanceReport) -> bool:
    return report.state != "terminated"


def _answering_state(resources: NodeResources) -> NodeState:
    """The state of a node that just answered: its own power state says awake or asleep."""
    return "asleep" if resources.power == "asleep" else "up"


class NodeRegistry:
    def __init__(self, store: ClusterStore, config_nodes: list[str], nc_port: int) -> None:
        self._store = store
        self._nc_port = nc_port
        self._nodes: dict[str, Node] = {}
        for stored in store.load_nodes():
            self._nodes[stored.url] = Node(**vars(stored))
        wanted = [node_url(n, nc_port) for n in config_nodes]
        for url in [u for u, n in self._nodes.items() if n.source == "config" and u not in wanted]:
            self._forget(url)
        for url in wanted:
            if url not in self._nodes:
                self._add(url, "config")
            elif self._nodes[url].source != "config":
                self._nodes[url].source = "config"
                store.save_node(self._nodes[url])

    # -- membership -------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        return sorted(self._nodes.values(), key=lambda n: n.position)

    def find(self, name_or_url: str) -> Node | None:
        if name_or_url.rstrip("/") in self._nodes:
            return self._nodes[name_or_url.rstrip("/")]
        return next((n for n in self._nodes.values() if n.node_id == name_or_url), None)

    def register(self, url: str) -> Node:
        url = node_url(url, self._nc_port)
        if url in self._nodes:
            raise KeyError(url)
        return self._add(url, "registered")

    def deregister(self, name_or_url: str) -> Node:
        node = self.find(name_or_url)
        if node is None:
            raise KeyError(name_or_url)
        self._forget(node.url)
        return node

    def _add(self, url: str, source: str) -> Node:
        position = max((n.position for n in self._nodes.values()), default=-1) + 1
        node = Node(url=url, source=source, position=position, last_error="not polled yet")
        self._nodes[url] = node
        self._store.save_node(node)
        return node

    def _forget(self, url: str) -> None:
        self._nodes.pop(url, None)
        self._store.delete_node(url)

    # -- what polls and calls learn -----------------------------------------------------------

    def record_answer(self, url: str, resources: NodeResources, reports: list[InstanceReport],
                      poll_started: float) -> NodeState | None:
        """A poll that started at `poll_started` (monotonic) succeeded. Returns the previous
        state when the state changed."""
        node = self._nodes.get(url)
        if node is None:
            return None  # deregistered while the poll was in flight
        before = node.state
        persisted = _persisted(node)
        node.node_id = resources.node_id
        node.missed_polls = 0
        node.last_seen = utcnow()
        node.last_error = None
        # Free is recomputed from this very answer's instance list (what the NC books for an
        # instance is VmType.needs()): the NC's own free figure may be read a moment later
        # than its list, and then counts an instance whose reservation the CC still holds.
        # With the list as the one snapshot, list plus held reservations counts each once.
        booked = ZERO
        for report in reports:
            if _is_live(report):
                booked = booked.plus(report.vm.needs())
        node.resources = resources.model_copy(update={"free": resources.max.minus(booked)})
        if poll_started >= node.changed_at:
            # Power state and instance list only from an answer newer than our own last call,
            # or a wake/run we just made would be undone until the next poll.
            node.state = _answering_state(resources)
            fresh = {r.instance_id: r for r in reports}
            if fresh != node.instances:
                node.instances = fresh
                self._store.replace_instances(url, fresh)
        elif node.state == "down":
            node.state = _answering_state(resources)
        # Write only what changed: a hundred nodes polled every few seconds would otherwise
        # be a hundred transactions a round for nothing (last_seen alone is not worth it).
        if _persisted(node) != persisted:
            self._store.save_node(node)
        return before if before != node.state else None

    def record_resources(self, url: str, resources: NodeResources) -> None:
        """A power call answered with the node's resources (and its new power state)."""
        node = self._nodes.get(url)
        if node is not None:
            node.changed_at = time.monotonic()
            node.resources = resources
            node.node_id = resources.node_id
            node.state = _answering_state(resources)
            node.missed_polls = 0
            node.last_seen = utcnow()
            self._store.save_node(node)

    def record_miss(self, url: str, error: str) -> NodeState | None:
        """A poll failed. Returns the previous state when this miss changed it."""
        node = self._nodes.get(url)
        if node is None:
            return None
        node.missed_polls += 1
        node.last_error = error
        before = node.state
        # A real node put to sleep stops answering; that is what asleep means, not down.
        if node.state == "up" and node.missed_polls >= MISSED_POLLS_FOR_DOWN:
            node.state = "down"
        self._store.save_node(node)
        return before if before != node.state else None

    def record_report(self, url: str, report: InstanceReport) -> None:
        """An NC answered a run/terminate/reboot with the instance's report."""
        node = self._nodes.get(url)
        if node is None:
            return
        node.changed_at = time.monotonic()
        node.instances = {**node.instances, report.instance_id: report}
        self._store.save_instance(url, report)

    def mark_asleep(self, url: str) -> None:
        """Taken before the NC is told to sleep, so no placement picks it as awake meanwhile."""
        node = self._nodes.get(url)
        if node is not None:
            node.changed_at = time.monotonic()
            node.state = "asleep"
            node.idle_since = None
            self._store.save_node(node)

    def set_idle_since(self, url: str, since: datetime | None) -> None:
        node = self._nodes.get(url)
        if node is not None and node.idle_since != since:
            node.idle_since = since
            self._store.save_node(node)

    # -- what others read ---------------------------------------------------------------------

    def locate(self, instance_id: str) -> Node | None:
        return next((n for n in self._nodes.values() if instance_id in n.instances), None)

    def views(self, held: Mapping[str, Resources]) -> list[NodeView]:
        """Nodes a policy may consider (up or asleep, with known resources), in registration
        order, each with the CC's reservations taken off its free figures."""
        views: list[NodeView] = []
        for node in self.nodes():
            if node.state == "down" or node.resources is None:
                continue
            views.append(NodeView(index=len(views), name=node.name, url=node.url, state=node.state,
                                  free=node.resources.free.minus(held.get(node.url, ZERO)),
                                  max=node.resources.max))
        return views

    def info(self, node: Node, held: Resources) -> NodeInfo:
        return NodeInfo(
            name=node.name, url=node.url, source=node.source,  # type: ignore[arg-type]
            position=node.position, state=node.state,  # type: ignore[arg-type]
            missed_polls=node.missed_polls, last_seen=node.last_seen, last_error=node.last_error,
            max=node.resources.max if node.resources else None,
            free=node.resources.free.minus(held) if node.resources else None,
            reserved=held, instances=len(node.live_instances()),
            idle_since=node.idle_since)

    def instances(self) -> list[ClusterInstance]:
        out: list[ClusterInstance] = []
        for node in self.nodes():
            for report in node.instances.values():
                item = ClusterInstance(**report.model_dump(), node_state=node.state)  # type: ignore[arg-type]
                if node.state == "down" and _is_live(report):
                    seen = node.last_seen.strftime("%Y-%m-%d %H:%M:%S UTC") if node.last_seen else "never"
                    item.reason = StateReason(
                        code="Server.InternalError",
                        message=(f"node {node.name} is down: it has not answered "
                                 f"{node.missed_polls} polls (last seen {seen}; {node.last_error}); "
                                 "this is its last report"))
                out.append(item)
        return out
