"""What changed on the nodes of one NC process, numbered, so that a describe can answer a
caller only what changed since the cursor of its last answer (a delta), and the process can
tell what its caller has seen.

A cursor is `<epoch>.<number>`: the epoch is new at every start of the process, so a cursor
from before a restart is unknown and gets a whole answer (what was in memory is gone). Kept in
memory only: per instance and per node the number of its last change, and the instances
forgotten (purged) since, up to GONE_KEPT of them; a cursor older than the oldest one pruned
gets a whole answer too."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

GONE_KEPT = 200_000


@dataclass
class Delta:
    """What changed after a cursor: nodes (prefixes) whose figures or instances changed, the
    instances changed on each, and the instances each has forgotten."""
    nodes: set[str] = field(default_factory=set)
    instances: dict[str, list[str]] = field(default_factory=dict)
    gone: dict[str, list[str]] = field(default_factory=dict)


class ChangeLog:
    def __init__(self, gone_kept: int = GONE_KEPT) -> None:
        self.epoch = secrets.token_hex(6)
        self._gone_kept = gone_kept
        self._lock = threading.Lock()
        self._number = 0
        self._floor = 0                                   # cursors below it: a whole answer
        self._instances: dict[str, tuple[int, str]] = {}  # instance id -> (number, prefix)
        self._nodes: dict[str, int] = {}                  # prefix -> number of its last change
        self._gone: dict[str, tuple[int, str]] = {}       # forgotten instance id -> (number, prefix)
        # The newest cursor a caller sent back: it has applied everything up to it.
        self.seen: int | None = None

    def cursor(self) -> str:
        with self._lock:
            return f"{self.epoch}.{self._number}"

    def parse(self, cursor: str | None) -> int | None:
        """The number of a cursor of this epoch still answerable by a delta, else None."""
        if not cursor:
            return None
        epoch, _, number = cursor.partition(".")
        if epoch != self.epoch or not number.isdigit():
            return None
        value = int(number)
        with self._lock:
            return value if self._floor <= value <= self._number else None

    def acknowledge(self, number: int) -> None:
        """A caller sent back a cursor of this epoch: everything up to it has reached it."""
        with self._lock:
            self.seen = number if self.seen is None else max(self.seen, number)

    def instance_changed(self, prefix: str, instance_id: str) -> None:
        with self._lock:
            self._number += 1
            self._instances[instance_id] = (self._number, prefix)
            self._nodes[prefix] = self._number
            self._gone.pop(instance_id, None)

    def node_changed(self, prefix: str) -> None:
        """The node's own figures changed (its power state)."""
        with self._lock:
            self._number += 1
            self._nodes[prefix] = self._number

    def forgotten(self, prefix: str, instance_ids: Iterable[str]) -> None:
        with self._lock:
            self._number += 1
            for instance_id in instance_ids:
                self._instances.pop(instance_id, None)
                self._gone[instance_id] = (self._number, prefix)
            self._nodes[prefix] = self._number
            if len(self._gone) > self._gone_kept:
                # The oldest half goes; a cursor from before them can no longer be answered
                # by a delta (it would miss their removal).
                ordered = sorted(self._gone.items(), key=lambda item: item[1][0])
                dropped = ordered[:len(ordered) // 2]
                self._floor = max(self._floor, dropped[-1][1][0])
                for instance_id, _ in dropped:
                    del self._gone[instance_id]

    def seen_by_caller(self, instance_id: str) -> bool:
        """Whether a caller has acknowledged a cursor at or past the instance's last change
        (an instance unchanged since this process started was in the whole answer that
        came before any cursor)."""
        with self._lock:
            if self.seen is None:
                return False
            entry = self._instances.get(instance_id)
            return entry is None or entry[0] <= self.seen

    def since(self, number: int) -> Delta:
        delta = Delta()
        with self._lock:
            delta.nodes = {prefix for prefix, n in self._nodes.items() if n > number}
            for instance_id, (n, prefix) in self._instances.items():
                if n > number:
                    delta.instances.setdefault(prefix, []).append(instance_id)
            for instance_id, (n, prefix) in self._gone.items():
                if n > number:
                    delta.gone.setdefault(prefix, []).append(instance_id)
        return delta
