"""Resources the CC has promised to a node before the node's own report shows them.

A node is chosen and its resources reserved in one step, under `lock`, so that concurrent
RunInstances requests never book the same cores twice. A reservation ends when the NC answers
the run call (the instance then is in the registry's list for the node, whose free figures
count it), when the NC refuses it, or when a poll or push lists it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.messages.node import Resources

# The one "nothing held" value: callers may test `held is ZERO` to skip arithmetic.
ZERO = Resources(cores=0, memory_mb=0, disk_gb=0)


@dataclass
class Reservation:
    instance_id: str
    node_url: str
    need: Resources
    made_at: float


class Reservations:
    def __init__(self, on_change: Callable[[str], object] = lambda _url: None) -> None:
        # Told of every booking and release: the node's (by URL) capacity entry changed.
        self._on_change = on_change
        # Re-entrant: placement holds it across choose-and-reserve for a whole request.
        self.lock = threading.RLock()
        self._by_instance: dict[str, Reservation] = {}
        # Per node, so that what a node holds costs one look-up, not a walk over every
        # reservation in the zone (40,000 of them while a large batch is placed).
        self._by_node: dict[str, dict[str, Reservation]] = {}
        self._totals: dict[str, Resources] = {}

    def reserve(self, node_url: str, instance_id: str, need: Resources) -> Reservation:
        with self.lock:
            self.release(instance_id)
            reservation = Reservation(instance_id, node_url, need, time.monotonic())
            self._by_instance[instance_id] = reservation
            self._by_node.setdefault(node_url, {})[instance_id] = reservation
            self._totals[node_url] = self._totals.get(node_url, ZERO).plus(need)
            self._on_change(node_url)
            return reservation

    def release(self, instance_id: str) -> bool:
        with self.lock:
            reservation = self._by_instance.pop(instance_id, None)
            if reservation is None:
                return False
            url = reservation.node_url
            held = self._by_node[url]
            del held[instance_id]
            if held:
                self._totals[url] = self._totals[url].minus(reservation.need)
            else:
                del self._by_node[url]
                del self._totals[url]
            self._on_change(url)
            return True

    def held(self, node_url: str) -> Resources:
        return self._totals.get(node_url, ZERO)

    def held_by_node(self) -> dict[str, Resources]:
        with self.lock:
            return dict(self._totals)

    def settle(self, node_url: str, listed: Iterable[str]) -> list[str]:
        """A poll or push of `node_url` lists `listed`: the node's figures now count them, so
        their reservations end."""
        with self.lock:
            held = self._by_node.get(node_url)
            if not held:
                return []
            done = [iid for iid in listed if iid in held]
            for instance_id in done:
                self.release(instance_id)
            return done

    def count(self) -> int:
        with self.lock:
            return len(self._by_instance)
