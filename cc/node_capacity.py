"""What each node has room for as the CC counts it, and the views of that figure its readers
take: the scheduler's policies (`NodeViews`), the CLC's admission (`CapacityView`, pushed
whole on every change) and the admin's node list (`node_info`).

A node's free figure is recounted from the instance list the CC keeps (`booked_by`,
`recounted`), and each reader takes the CC's own reservations (`held(url)`) off it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import overload

from cc.reservations import ZERO
from cc.scheduler import NodeView
from cc.tracked_node import TrackedNode, is_live
from services.messages.cluster import NodeCapacity, NodeInfo
from services.messages.node import InstanceReport, NodeResources, Resources


def _triple(r: Resources) -> tuple[int, int, int]:
    return (r.cores, r.memory_mb, r.disk_gb)


def _figures(r: NodeResources) -> tuple[object, ...]:
    """What a node reports apart from its free figures (which the CC recomputes), as plain
    values: comparing pydantic models field by field cost more than a poll's parsing."""
    return (r.node_id, r.power, r.hypervisor, _triple(r.max), _triple(r.host))


def booked_by(instances: Iterable[InstanceReport]) -> tuple[int, int, int]:
    """What the live instances among `instances` book: cores, MB, GB."""
    cores = memory = disk = 0
    for report in instances:
        if is_live(report):
            need = report.vm.needs()
            cores += need.cores
            memory += need.memory_mb
            disk += need.disk_gb
    return cores, memory, disk


def recounted(old: NodeResources | None, reported: NodeResources,
              booked: tuple[int, int, int]) -> NodeResources:
    """The figures to keep for a node that reported `reported` while its instances book
    `booked`; `old` itself when nothing changed.

    Free is recomputed from the instance list the CC keeps (what the NC books for an instance
    is VmType.needs()): the NC's own free figure may be read a moment before or after its
    list, and the CC's reservations end when an instance enters that list, so list plus held
    reservations counts each instance exactly once."""
    top, (cores, memory, disk) = reported.max, booked
    free = (top.cores - cores, top.memory_mb - memory, top.disk_gb - disk)
    if old is not None and _figures(old) == _figures(reported) and _triple(old.free) == free:
        # The same figures as before: keep the object, so that whoever compares or caches by
        # it (the capacity view, the rows to write) sees no change.
        return old
    if _triple(reported.free) != free:
        reported = reported.model_copy(update={"free": Resources(
            cores=free[0], memory_mb=free[1], disk_gb=free[2])})
    return reported


class NodeViews(Sequence[NodeView]):
    """The nodes in registration order as policies see them, each view made only when a
    policy asks for it: a decision on a zone of 20,000 nodes looks at a handful."""

    def __init__(self, nodes: list[TrackedNode], held: Callable[[str], Resources]) -> None:
        self._nodes = nodes
        self._held = held

    def __len__(self) -> int:
        return len(self._nodes)

    @overload
    def __getitem__(self, index: int) -> NodeView: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[NodeView]: ...

    def __getitem__(self, index: int | slice) -> NodeView | Sequence[NodeView]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        node = self._nodes[index]
        resources = node.resources
        if resources is None:
            # Never answered, so down: the Awake filter turns it away.
            return NodeView(index=index, name=node.name, url=node.url, state=node.state,  # type: ignore[arg-type]
                            free=ZERO, max=ZERO)
        held = self._held(node.url)
        free = resources.free if held is ZERO else resources.free.minus(held)
        return NodeView(index=index, name=node.name, url=node.url, state=node.state,  # type: ignore[arg-type]
                        free=free, max=resources.max)

    def index_of(self, url: str) -> int:
        return next(i for i, n in enumerate(self._nodes) if n.url == url)


class CapacityView:
    """The nodes with known figures, as the CLC admits work against them. Each node's entry
    is remade only when its figures or its reservations were replaced (both are replaced on
    change, never changed in place), so an unchanged node's entry is the same object from one
    view to the next: the feed pushes the CLC only the entries that are not."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[object, ...], NodeCapacity, object, object]] = {}

    def _cached(self, node: TrackedNode, held: Callable[[str], Resources]
                ) -> tuple[tuple[object, ...], NodeCapacity, object, object] | None:
        resources = node.resources
        if resources is None:
            return None
        taken = held(node.url)
        key = (node.name, node.state, id(resources), id(taken))
        cached = self._cache.get(node.url)
        if cached is None or cached[0] != key:
            entry = NodeCapacity(
                name=node.name, state=node.state,  # type: ignore[arg-type]
                free=resources.free if taken is ZERO else resources.free.minus(taken),
                max=resources.max)
            # The objects are kept with the entry so their ids cannot be reused meanwhile.
            cached = (key, entry, resources, taken)
        return cached

    def entries(self, nodes: Iterable[TrackedNode],
                held: Callable[[str], Resources]) -> dict[str, NodeCapacity]:
        """Every node's entry, by URL, in registration order."""
        out: dict[str, NodeCapacity] = {}
        # Only the nodes listed now are kept, so a deregistered node's entry goes with it.
        kept: dict[str, tuple[tuple[object, ...], NodeCapacity, object, object]] = {}
        for node in nodes:
            cached = self._cached(node, held)
            if cached is not None:
                kept[node.url] = cached
                out[node.url] = cached[1]
        self._cache = kept
        return out

    def entry(self, url: str, node: TrackedNode | None,
              held: Callable[[str], Resources]) -> NodeCapacity | None:
        """One node's entry (None: gone, or no figures yet)."""
        cached = self._cached(node, held) if node is not None else None
        if cached is None:
            self._cache.pop(url, None)
            return None
        self._cache[url] = cached
        return cached[1]


def node_info(node: TrackedNode, held: Resources) -> NodeInfo:
    """A node as `eucasim node list` shows it, its reservations taken off its free figures."""
    return NodeInfo(
        name=node.name, url=node.url, source=node.source,  # type: ignore[arg-type]
        position=node.position, state=node.state,  # type: ignore[arg-type]
        missed_polls=node.missed_polls, last_seen=node.last_seen, last_error=node.last_error,
        max=node.resources.max if node.resources else None,
        free=node.resources.free.minus(held) if node.resources else None,
        reserved=held, instances=len(node.live_instances()),
        idle_since=node.idle_since)
