"""The zone's nodes as the CC knows them: where they are, whether they answer, what they
last reported. A node that misses MISSED_POLLS_FOR_DOWN polls in a row is `down`; its
instances stay known (with a reason) and it is `up` again as soon as it answers.

Everything here runs on the CC's event loop and only changes memory. What changed is told to
a `Listener` (the zone feed pushes it to the CLC, the cluster writes it to the database in
batches, off the loop); the registry itself never blocks.

A node's instance list mirrors what its NC keeps, with one exception: an instance the NC has
forgotten (it forgets terminated ones soon after the CC saw them) stays here, terminated,
until the CLC has been told it ended (`delivered`: the feed's mark), so the CLC never finds
an instance missing whose end it has not heard of; then it goes here too."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from cc.ended import EndedInstances
from cc.node_capacity import booked_by, recounted
from cc.node_urls import node_url, split_url
from cc.store import StoredNode
from cc.tracked_node import TrackedNode, answering_state, cluster_instance, is_live, same_report
from services.clock import utcnow
from services.messages.cluster import ClusterInstance, NodeState
from services.messages.node import InstanceReport, NodeResources

MISSED_POLLS_FOR_DOWN = 3


class Listener(Protocol):
    def instances_changed(self, items: list[ClusterInstance]) -> None: ...

    def capacity_changed(self, url: str) -> None: ...

    def stored_changed(self) -> None: ...


class _Nobody:
    def instances_changed(self, items: list[ClusterInstance]) -> None:
        pass

    def capacity_changed(self, url: str) -> None:
        pass

    def stored_changed(self) -> None:
        pass


def _persisted(node: StoredNode) -> tuple[object, ...]:
    return (node.node_id, node.state, node.missed_polls, node.last_error, node.resources,
            node.idle_since)


def _capacity(node: StoredNode) -> tuple[object, ...]:
    return (node.state, node.resources.free if node.resources else None,
            node.resources.max if node.resources else None)


def _answered(node: TrackedNode, resources: NodeResources) -> None:
    """What any answer of a node's (whole or delta) tells: it is there, as of now."""
    node.node_id = resources.node_id
    node.missed_polls = 0
    node.last_seen = utcnow()
    node.last_error = None


class NodeRegistry:
    def __init__(self, stored: Iterable[StoredNode], config_nodes: list[str], nc_port: int,
                 listener: Listener | None = None) -> None:
        self._nc_port = nc_port
        self.lost_after: float | None = None      # NODE_LOST_GRACE, set by the cluster
        self.listener: Listener = listener or _Nobody()
        self._nodes: dict[str, TrackedNode] = {}
        self._ordered: list[TrackedNode] | None = None
        self._where: dict[str, str] = {}           # instance id -> node URL
        self._dirty: set[str] = set()              # node URLs to write (or delete)
        self.ended = EndedInstances()      # its `delivered` is set by the cluster
        for node in stored:
            tracked = TrackedNode(**{**vars(node), "instances": {}})
            self._nodes[node.url] = tracked
            self._set_instances(tracked, node.instances)
        self._next_position = max((n.position for n in self._nodes.values()), default=-1) + 1
        wanted = [node_url(n, nc_port) for n in config_nodes]
        for url in [u for u, n in self._nodes.items() if n.source == "config" and u not in wanted]:
            self._forget(url)
        for url in wanted:
            if url not in self._nodes:
                self._add(url, "config")
            elif self._nodes[url].source != "config":
                self._nodes[url].source = "config"
                self._mark(url)

    # -- membership -------------------------------------------------------------------------

    def nodes(self) -> list[TrackedNode]:
        if self._ordered is None:
            self._ordered = sorted(self._nodes.values(), key=lambda n: n.position)
        return self._ordered

    def settled(self) -> bool:
        """Every node has been polled since this CC started: it answered (its figures are
        known) or missed. A node not polled yet starts `down`, which says nothing of what
        it runs."""
        return all(n.resources is not None or n.missed_polls > 0 for n in self.nodes())

    def find(self, name_or_url: str) -> TrackedNode | None:
        if name_or_url.rstrip("/") in self._nodes:
            return self._nodes[name_or_url.rstrip("/")]
        return next((n for n in self._nodes.values() if n.node_id == name_or_url), None)

    def namesake(self, url: str) -> TrackedNode | None:
        """Another node that goes by the same name as the node at `url` (two NCs reporting one
        node id: hosts left with the default PUBLIC_HOST, 127.0.0.1, or one NC registered
        under two addresses). The zone's capacity and placements are counted by name."""
        node = self._nodes.get(url.rstrip("/"))
        if node is None or not node.node_id:
            return None
        return next((n for n in self._nodes.values() if n.url != node.url and n.name == node.name), None)

    def by_process(self) -> dict[str, list[TrackedNode]]:
        """The nodes grouped by the NC process that serves them (its root URL)."""
        groups: dict[str, list[TrackedNode]] = {}
        for node in self.nodes():
            groups.setdefault(split_url(node.url)[0], []).append(node)
        return groups

    def register(self, url: str) -> TrackedNode:
        url = node_url(url, self._nc_port)
        if url in self._nodes:
            raise KeyError(url)
        return self._add(url, "registered")

    def deregister(self, name_or_url: str) -> TrackedNode:
        node = self.find(name_or_url)
        if node is None:
            raise KeyError(name_or_url)
        self._forget(node.url)
        self.listener.capacity_changed(node.url)
        return node

    def _add(self, url: str, source: str) -> TrackedNode:
        position = self._next_position
        self._next_position += 1
        node = TrackedNode(url=url, source=source, position=position, last_error="not polled yet")
        self._nodes[url] = node
        self._ordered = None
        self._mark(url)
        return node

    def _forget(self, url: str) -> None:
        node = self._nodes.pop(url, None)
        if node is not None:
            self._index(url, node.instances, {})
        self._ordered = None
        self._mark(url)

    # -- what polls, pushes and calls learn ---------------------------------------------------

    def record_answer(self, url: str, resources: NodeResources, reports: list[InstanceReport],
                      poll_started: float) -> NodeState | None:
        """A poll that started at `poll_started` (monotonic) succeeded. Returns the previous
        state when the state changed."""
        node = self._nodes.get(url)
        if node is None:
            return None  # deregistered while the poll was in flight
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        _answered(node, resources)
        changed: list[InstanceReport] = []
        if poll_started >= node.changed_at:
            # Power state and instance list only from an answer newer than our own last call
            # or push, or a wake/run we just made would be undone until the next poll.
            node.state = answering_state(resources)
            fresh = {r.instance_id: r for r in reports}
            self.ended.retain(url, [iid for iid in node.instances if iid not in fresh], node.instances, fresh)
            changed = [r for r in reports if not same_report(node.instances.get(r.instance_id), r)]
            if changed or fresh.keys() != node.instances.keys():
                self._set_instances(node, fresh)
        elif node.state == "down":
            node.state = answering_state(resources)
        self._set_resources(node, resources)
        self._after(node, before, persisted, capacity, changed)
        return before if before != node.state else None

    def record_delta(self, url: str, resources: NodeResources, reports: list[InstanceReport],
                     gone: list[str], poll_started: float) -> tuple[NodeState | None, bool]:
        """A delta poll's news of one node: its figures, the instances that changed and those
        it forgot. Returns the previous state when the state changed, and whether the instance
        news was applied: not when a call or push newer than the poll came meanwhile (as for
        a whole answer); the caller then asks for the node whole next time, since the cursor
        has gone past these changes."""
        node = self._nodes.get(url)
        if node is None:
            return None, True
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        _answered(node, resources)
        changed: list[InstanceReport] = []
        applied = poll_started >= node.changed_at
        if applied:
            node.state = answering_state(resources)
            changed = [r for r in reports if not same_report(node.instances.get(r.instance_id), r)]
            dropped = [iid for iid in gone if iid in node.instances]
            if changed or dropped:
                merged = {**node.instances, **{r.instance_id: r for r in changed}}
                for iid in dropped:
                    del merged[iid]
                self.ended.retain(url, dropped, node.instances, merged)
                self._set_instances(node, merged)
        elif node.state == "down":
            node.state = answering_state(resources)
        self._set_resources(node, resources)
        self._after(node, before, persisted, capacity, changed)
        return (before if before != node.state else None), applied

    def record_alive(self, url: str, seen: object) -> NodeState | None:
        """A delta poll left the node out: it answers and nothing of it changed. Returns the
        previous state when the state changed. Costs an assignment for a node that was fine:
        a round of 20,000 unchanged nodes."""
        node = self._nodes.get(url)
        if node is None:
            return None
        if node.missed_polls == 0 and node.last_error is None and node.state != "down":
            node.last_seen = seen  # type: ignore[assignment]
            return None
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        node.missed_polls = 0
        node.last_error = None
        node.last_seen = seen  # type: ignore[assignment]
        if node.state == "down" and node.resources is not None:
            node.state = answering_state(node.resources)
        self._after(node, before, persisted, capacity, [])
        return before if before != node.state else None

    def record_event(self, url: str, resources: NodeResources, reports: list[InstanceReport]) -> bool:
        """An NC pushed the instances that changed on a node, and the node's resources after
        the change. Returns False for a node this zone does not know."""
        node = self._nodes.get(url)
        if node is None:
            return False
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        # Newer than any poll now in flight, which must not undo it.
        node.changed_at = time.monotonic()
        node.node_id = resources.node_id
        node.missed_polls = 0
        node.last_seen = utcnow()
        node.last_error = None
        node.state = answering_state(resources)
        changed = [r for r in reports if not same_report(node.instances.get(r.instance_id), r)]
        if changed:
            self._set_instances(node, {**node.instances, **{r.instance_id: r for r in changed}})
        self._set_resources(node, resources)
        self._after(node, before, persisted, capacity, changed)
        return True

    def record_report(self, url: str, report: InstanceReport) -> None:
        """An NC answered a run/terminate/reboot with the instance's report."""
        node = self._nodes.get(url)
        if node is None:
            return
        node.changed_at = time.monotonic()
        if same_report(node.instances.get(report.instance_id), report):
            return
        persisted, capacity = _persisted(node), _capacity(node)
        self._set_instances(node, {**node.instances, report.instance_id: report})
        if node.resources is not None:
            self._set_resources(node, node.resources)
        self._after(node, node.state, persisted, capacity, [report], instances_stored=True)

    def record_resources(self, url: str, resources: NodeResources) -> None:
        """A power call answered with the node's resources (and its new power state)."""
        node = self._nodes.get(url)
        if node is None:
            return
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        node.changed_at = time.monotonic()
        node.node_id = resources.node_id
        node.state = answering_state(resources)
        node.missed_polls = 0
        node.last_seen = utcnow()
        self._set_resources(node, resources)
        self._after(node, before, persisted, capacity, [])

    def record_miss(self, url: str, error: str) -> NodeState | None:
        """A poll failed. Returns the previous state when this miss changed it."""
        node = self._nodes.get(url)
        if node is None:
            return None
        before, persisted, capacity = node.state, _persisted(node), _capacity(node)
        node.missed_polls += 1
        node.last_error = error
        # A real node put to sleep stops answering; that is what asleep means, not down.
        if node.state == "up" and node.missed_polls >= MISSED_POLLS_FOR_DOWN:
            node.state = "down"
        self._after(node, before, persisted, capacity, [])
        return before if before != node.state else None

    def mark_asleep(self, url: str) -> None:
        """Taken before the NC is told to sleep, so no placement picks it as awake meanwhile."""
        node = self._nodes.get(url)
        if node is not None:
            before, persisted, capacity = node.state, _persisted(node), _capacity(node)
            node.changed_at = time.monotonic()
            node.state = "asleep"
            node.idle_since = None
            self._after(node, before, persisted, capacity, [])

    def set_idle_since(self, url: str, since: object) -> None:
        node = self._nodes.get(url)
        if node is not None and node.idle_since != since:
            node.idle_since = since  # type: ignore[assignment]
            self._mark(url)

    def _set_instances(self, node: TrackedNode, instances: dict[str, InstanceReport]) -> None:
        self._index(node.url, node.instances, instances)
        for iid in node.instances.keys() - instances.keys():
            self.ended.removed(node.url, iid, located=iid in self._where)
        node.instances = instances
        node.booked = booked_by(instances.values())

    def sweep(self) -> int:
        """Drop the ended instances kept for the CLC (cc/ended.py) that it has heard of."""
        done = self.ended.delivered_now()
        for url, iids in done.items():
            node = self._nodes.get(url)
            if node is None:        # deregistered meanwhile: nothing to drop but the note
                for iid in iids:
                    self.ended.removed(url, iid, located=iid in self._where)
                continue
            persisted, capacity = _persisted(node), _capacity(node)
            self._set_instances(node, {i: r for i, r in node.instances.items() if i not in iids})
            self._after(node, node.state, persisted, capacity, [], instances_stored=True)
        return sum(len(iids) for iids in done.values())

    def _set_resources(self, node: TrackedNode, resources: NodeResources) -> None:
        node.resources = recounted(node.resources, resources, node.booked)

    def _index(self, url: str, old: dict[str, InstanceReport], new: dict[str, InstanceReport]) -> None:
        for iid in old.keys() - new.keys():
            if self._where.get(iid) == url:
                del self._where[iid]
        for iid, report in new.items():
            # An EBS-backed instance started again after a stop may run on another node while
            # its old node still reports it terminated: the live report says where it is.
            where = self._where.get(iid)
            if where is None or where == url or is_live(report):
                self._where[iid] = url

    def _after(self, node: TrackedNode, before: str, persisted: tuple[object, ...],
               capacity: tuple[object, ...], changed: list[InstanceReport],
               instances_stored: bool = False) -> None:
        """Tell the listener what this change means: instances to push (all of the node's when
        its state changed, since their node_state did), capacity, rows to write."""
        if before != node.state:
            changed = list(node.instances.values())
        if changed:
            self.ended.learned(node.url, changed, self._where.get)
            self.listener.instances_changed([cluster_instance(node, r) for r in changed])
        if _capacity(node) != capacity:
            self.listener.capacity_changed(node.url)
        # Write only what changed: twenty thousand nodes answering a round would otherwise be
        # twenty thousand rows rewritten for nothing (last_seen alone is not worth it).
        if changed or instances_stored or _persisted(node) != persisted:
            self._mark(node.url)

    def _mark(self, url: str) -> None:
        self._dirty.add(url)
        self.listener.stored_changed()

    def take_changes(self) -> tuple[list[StoredNode], list[str]]:
        """What to write since the last call: copies of the changed nodes, and the URLs of
        those that are gone. The copies share reports and resources, which are replaced,
        never changed in place, so a thread may serialize them while the loop goes on."""
        dirty, self._dirty = self._dirty, set()
        saved: list[StoredNode] = []
        deleted: list[str] = []
        for url in dirty:
            node = self._nodes.get(url)
            if node is None:
                deleted.append(url)
                continue
            saved.append(StoredNode(**{name: getattr(node, name) for name in StoredNode.__dataclass_fields__}))
        return saved, deleted

    # -- what others read ---------------------------------------------------------------------

    def locate(self, instance_id: str) -> TrackedNode | None:
        url = self._where.get(instance_id)
        return self._nodes.get(url) if url is not None else None

    def instances(self) -> list[ClusterInstance]:
        return [cluster_instance(node, report, self.lost_after)
                for node in self.nodes() for report in node.instances.values()]

    def states(self) -> Sequence[str]:
        return [n.state for n in self.nodes()]
