"""The CLC's own view of each zone's free capacity, and the holds it keeps for launches the
zone's view does not count yet: what RunInstances is admitted against, without asking the CC
(as Eucalyptus 3's CLC kept cluster state).

The CC sends its capacity (ZoneCapacity, versioned) in every ZoneReport and pushes it in
ZoneEvents when it changes. A launch the CLC admits takes a hold at once (its instances,
node not known yet); when the CC has placed them the hold moves onto their nodes and waits for
a capacity view at least as new as RunInstancesResult.capacity_version, which counts them, and
is dropped then. A launch the CC refuses releases its hold.

Pure bookkeeping in memory under one small lock per zone: nothing here calls another service."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from services.errors import EC2Error
from services.messages.cluster import NodeState, ZoneCapacity
from services.messages.node import Resources, VmType

# A sleeping node can be woken for a launch; a down one cannot help.
USABLE: frozenset[NodeState] = frozenset({"up", "asleep"})


class NoView(Exception):
    """The CLC has no capacity view of the zone yet (a fresh CLC): ask the zone once."""


Triple = tuple[int, int, int]  # cores, memory MB, disk GB


def _triple(resources: Resources) -> Triple:
    return resources.cores, resources.memory_mb, resources.disk_gb


def _fits(free: Triple, need: Triple) -> int:
    return max(0, min(free[0] // need[0], free[1] // need[1], free[2] // need[2]))


def _less(free: Triple, need: Triple, count: int) -> Triple:
    return free[0] - need[0] * count, free[1] - need[1] * count, free[2] - need[2] * count


def fits(free: Resources, need: Resources) -> int:
    """How many instances needing `need` fit into `free`."""
    return _fits(_triple(free), _triple(need))


@dataclass
class Hold:
    need: Resources                                        # one instance's
    unplaced: int                                          # admitted, node not known yet
    on_nodes: dict[str, int] = field(default_factory=dict)  # placed: node -> instances
    until_version: int | None = None                       # dropped by a view this new


def insufficient(vm: VmType, min_count: int, fit: int) -> EC2Error:
    return EC2Error("InsufficientInstanceCapacity",
                    f"There is not enough capacity in this zone for {min_count} {vm.name} "
                    f"instance(s): only {fit} fit ({vm.cpu} cores, {vm.memory_mb} MB each).")


class ZoneView:
    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.capacity: ZoneCapacity | None = None
        self._holds: dict[str, Hold] = {}
        self._lock = threading.Lock()

    # -- admission -----------------------------------------------------------------------------

    def _room(self, need: Resources) -> int:
        """How many instances needing `need` fit in the view, net of every hold."""
        assert self.capacity is not None
        # Plain tuples: at thousands of nodes, pydantic arithmetic per node would dominate.
        free = {n.name: _triple(n.free) for n in self.capacity.nodes if n.state in USABLE}
        for hold in self._holds.values():
            for node, count in hold.on_nodes.items():
                if node in free:
                    free[node] = _less(free[node], _triple(hold.need), count)
        rooms = list(free.values())
        # Admitted but not placed yet: booked where the CC could put them, first fit.
        for hold in self._holds.values():
            left, wanted = hold.unplaced, _triple(hold.need)
            for index, room in enumerate(rooms):
                if left == 0:
                    break
                taken = min(left, _fits(room, wanted))
                rooms[index] = _less(room, wanted, taken)
                left -= taken
        wanted = _triple(need)
        return sum(_fits(room, wanted) for room in rooms)

    def room_for(self, vm: VmType) -> int:
        with self._lock:
            if self.capacity is None:
                raise NoView(self.zone)
            return self._room(vm.needs())

    def admit(self, reservation_id: str, vm: VmType, min_count: int, max_count: int) -> int:
        """How many of the launch to start (min_count..max_count), held until the zone counts
        them; InsufficientInstanceCapacity, and nothing held, when fewer than min_count fit."""
        need = vm.needs()
        with self._lock:
            if self.capacity is None:
                raise NoView(self.zone)
            fit = self._room(need)
            if fit < min_count:
                raise insufficient(vm, min_count, fit)
            count = min(fit, max_count)
            self._holds[reservation_id] = Hold(need=need, unplaced=count)
            return count

    def placed(self, reservation_id: str, nodes: dict[str, int], version: int) -> None:
        """The CC placed the launch on `nodes`; views from `version` on count it. Version 0
        comes from a CC that does not version its view: the next view to arrive counts it."""
        with self._lock:
            hold = self._holds.get(reservation_id)
            if hold is None:
                return
            if version > 0 and self.capacity is not None and self.capacity.version >= version:
                del self._holds[reservation_id]
                return
            hold.unplaced, hold.on_nodes, hold.until_version = 0, dict(nodes), version

    def release(self, reservation_id: str) -> None:
        with self._lock:
            self._holds.pop(reservation_id, None)

    def holds(self) -> int:
        with self._lock:
            return len(self._holds)

    # -- what the zone reports -----------------------------------------------------------------

    def arrived(self, capacity: ZoneCapacity, *, whole_report: bool) -> bool:
        """A capacity view from the zone; False when it is older than the one held (a push
        overtaken by a later one). A whole report (the reconcile round's) is taken even when
        its version went down: the CC restarted, and its placed holds mean nothing now."""
        with self._lock:
            current = self.capacity
            if capacity.base is not None:
                # A delta (pushed): it applies only on top of the view it was made against.
                if current is None or current.version != capacity.base:
                    return False
                capacity = _merged(current, capacity)
            if current is not None and capacity.version < current.version:
                if not whole_report:
                    return False
                for reservation_id in [r for r, h in self._holds.items() if h.until_version is not None]:
                    del self._holds[reservation_id]
            self.capacity = capacity
            for reservation_id in [r for r, h in self._holds.items()
                                   if h.until_version is not None and capacity.version >= h.until_version]:
                del self._holds[reservation_id]
            return True


def _merged(current: ZoneCapacity, delta: ZoneCapacity) -> ZoneCapacity:
    """The view `current` with `delta`'s entries put in place (a node keeps its position, so
    first-fit over the list is unchanged) and its removed names taken out."""
    entries = {n.name: n for n in current.nodes}
    for node in delta.nodes:
        entries[node.name] = node
    for name in delta.removed:
        entries.pop(name, None)
    return ZoneCapacity(version=delta.version, nodes=list(entries.values()))


class ZoneViews:
    """One ZoneView per configured zone."""

    def __init__(self, zones: list[str]) -> None:
        self._views = {zone: ZoneView(zone) for zone in zones}

    def __getitem__(self, zone: str) -> ZoneView:
        return self._views[zone]

    def __contains__(self, zone: object) -> bool:
        return zone in self._views
