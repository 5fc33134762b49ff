"""The shape every resource's state machine takes in the CLC: a Literal of its states, one
table of the moves allowed out of each, and one `transition()` function per resource (beside
the resource's behaviour: clc/instances.py for instances) that asks `Moves.check` and then
records the state and why. Volumes, snapshots and addresses follow the same shape.

    VolumeState = Literal["creating", "available", "in-use", "deleting", "deleted", "error"]
    VOLUME_MOVES = Moves[VolumeState]("volume", {"creating": {"available", "error"}, ...})"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Generic, TypeVar

S = TypeVar("S", bound=str)


class TransitionError(Exception):
    """A move the resource's table does not allow: a bug, or a stale report."""


class Moves(Generic[S]):
    def __init__(self, resource: str, allowed: Mapping[S, Set[S]]) -> None:
        self.resource = resource
        self.allowed = allowed

    def allows(self, before: S, after: S) -> bool:
        return after in self.allowed.get(before, frozenset())

    def check(self, resource_id: str, before: S, after: S) -> None:
        if not self.allows(before, after):
            raise TransitionError(f"{self.resource} {resource_id}: {before} -> {after} is not allowed")

    def final(self, state: S) -> bool:
        return not self.allowed.get(state)
