"""Resources the CC has promised to a node before the node's own report shows them.

A node is chosen and its resources reserved in one step, under `lock`, so that concurrent
RunInstances requests never book the same cores twice. A reservation ends when the NC
refuses the instance, or when a poll's instance list shows it: the registry computes a node's
free figures from that same list, so from then on they include the instance."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from services.messages.node import Resources

ZERO = Resources(cores=0, memory_mb=0, disk_gb=0)


@dataclass
class Reservation:
    instance_id: str
    node_url: str
    need: Resources
    made_at: float
    confirmed_at: float | None = None   # when the NC accepted the instance (monotonic)


class Reservations:
    def __init__(self) -> None:
        # Re-entrant: placement holds it across choose-and-reserve for a whole request.
        self.lock = threading.RLock()
        self._by_instance: dict[str, Reservation] = {}

    def reserve(self, node_url: str, instance_id: str, need: Resources) -> Reservation:
        with self.lock:
            reservation = Reservation(instance_id, node_url, need, time.monotonic())
            self._by_instance[instance_id] = reservation
            return reservation

    def confirm(self, instance_id: str) -> None:
        with self.lock:
            reservation = self._by_instance.get(instance_id)
            if reservation is not None:
                reservation.confirmed_at = time.monotonic()

    def release(self, instance_id: str) -> None:
        with self.lock:
            self._by_instance.pop(instance_id, None)

    def held(self, node_url: str) -> Resources:
        return self.held_by_node().get(node_url, ZERO)

    def held_by_node(self) -> dict[str, Resources]:
        with self.lock:
            totals: dict[str, Resources] = {}
            for r in self._by_instance.values():
                totals[r.node_url] = totals.get(r.node_url, ZERO).plus(r.need)
            return totals

    def settle(self, node_url: str, poll_started: float, listed: set[str]) -> list[str]:
        """A poll of `node_url` sent at `poll_started` came back listing `listed`: the figures
        computed from it cover those instances. One the NC accepted before the poll was sent
        but does not list was lost there, and is released too."""
        with self.lock:
            done = [r.instance_id for r in self._by_instance.values()
                    if r.node_url == node_url and (
                        r.instance_id in listed
                        or (r.confirmed_at is not None and r.confirmed_at < poll_started))]
            for instance_id in done:
                del self._by_instance[instance_id]
            return done

    def count(self) -> int:
        with self.lock:
            return len(self._by_instance)
