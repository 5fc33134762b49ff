"""Scheduling policies, one class per SCHEDPOLICY. A policy answers one question: which of
these nodes (in registration order, free figures already net of reservations) gets one
instance needing `need`? It never reserves anything itself; placement.py does that."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cc.registry import NodeView
from services.messages.cluster import SchedPolicy
from services.messages.node import Resources


class Policy(Protocol):
    name: SchedPolicy

    def choose(self, nodes: Sequence[NodeView], need: Resources) -> NodeView | None: ...

    def why(self, node: NodeView) -> str:
        """One sentence for the teaching trace: why this node."""
        ...

    def snapshot(self) -> str:
        """The state worth keeping across a restart ("" when there is none)."""
        ...

    def restore(self, saved: str) -> None: ...


def _awake(node: NodeView) -> bool:
    return node.state == "up"


def _first_awake_with_room(nodes: Sequence[NodeView], need: Resources) -> NodeView | None:
    return next((n for n in nodes if _awake(n) and n.free.fits(need)), None)


class _Stateless:
    """A policy with nothing to keep across a restart."""

    def snapshot(self) -> str:
        return ""

    def restore(self, saved: str) -> None:
        pass


class Greedy(_Stateless):
    """The first node, in registration order, where the instance fits."""

    name: SchedPolicy = "GREEDY"

    def choose(self, nodes: Sequence[NodeView], need: Resources) -> NodeView | None:
        return _first_awake_with_room(nodes, need)

    def why(self, node: NodeView) -> str:
        return f"GREEDY: {node.name} is the first node in registration order with room"


class RoundRobin:
    """From a saved pointer, the next node that fits; the pointer moves past it."""

    name: SchedPolicy = "ROUNDROBIN"

    def __init__(self, pointer: int = 0) -> None:
        self.pointer = pointer

    def choose(self, nodes: Sequence[NodeView], need: Resources) -> NodeView | None:
        for offset in range(len(nodes)):
            node = nodes[(self.pointer + offset) % len(nodes)]
            if _awake(node) and node.free.fits(need):
                self.pointer = (self.pointer + offset + 1) % len(nodes)
                return node
        return None

    def why(self, node: NodeView) -> str:
        return (f"ROUNDROBIN: {node.name} is the first node with room from the saved pointer; "
                f"the pointer now points at position {self.pointer}")

    def snapshot(self) -> str:
        return str(self.pointer)

    def restore(self, saved: str) -> None:
        self.pointer = int(saved) if saved.strip().isdigit() else 0


class PowerSave(_Stateless):
    """GREEDY over awake nodes; when none has room, the first sleeping node that would (the
    caller wakes it). Putting idle nodes to sleep is power.py's job."""

    name: SchedPolicy = "POWERSAVE"

    def choose(self, nodes: Sequence[NodeView], need: Resources) -> NodeView | None:
        awake = _first_awake_with_room(nodes, need)
        if awake is not None:
            return awake
        return next((n for n in nodes if n.state == "asleep" and n.free.fits(need)), None)

    def why(self, node: NodeView) -> str:
        if node.state == "asleep":
            return f"POWERSAVE: no awake node has room, so {node.name} is woken"
        return f"POWERSAVE: {node.name} is the first awake node with room"


class TargetNode(_Stateless):
    """An administrator named the node: it alone is considered (awake or asleep)."""

    def __init__(self, policy: SchedPolicy, target: str) -> None:
        self.name: SchedPolicy = policy
        self._target = target

    def choose(self, nodes: Sequence[NodeView], need: Resources) -> NodeView | None:
        return next((n for n in nodes if self._target in (n.name, n.url) and n.free.fits(need)), None)

    def why(self, node: NodeView) -> str:
        return f"an administrator asked for {node.name}"


POLICIES: dict[str, type[Greedy] | type[RoundRobin] | type[PowerSave]] = {
    "GREEDY": Greedy, "ROUNDROBIN": RoundRobin, "POWERSAVE": PowerSave}


def make_policy(name: SchedPolicy, saved: str | None = None) -> Policy:
    policy: Policy = POLICIES[name]()
    if saved:
        policy.restore(saved)
    return policy
