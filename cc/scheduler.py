"""Where an instance goes, in two parts, as Nova's scheduler splits it:

- filters, each a small class answering one question about one node (does the instance fit its
  free cores? its memory? its disk? is the node awake? did the request rule it out?);
- policies, one class per SCHEDPOLICY, that only decide the ORDER in which nodes are offered
  to the filters and take the first one that passes. A policy never reserves anything itself;
  placement.py does that, and never re-checks what a filter answers.

Filtering is lazy: a policy asks about one node at a time and stops at the first that passes,
so GREEDY and ROUNDROBIN cost a few checks per instance while early nodes have room, whatever
the size of the zone (40,000 instances on 20,000 nodes go through here one by one). Only when
no node passes does `FilterChain.explain` walk the candidates again, to say which filter turned
each away for the trace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.messages.cluster import NodeState, SchedPolicy
from services.messages.node import Resources


@dataclass(frozen=True)
class NodeView:
    """What filters and policies see of one node: free is the NC's figure minus the CC's own
    reservations not yet visible in it. `index` is its place in registration order."""
    index: int
    name: str
    url: str
    state: NodeState
    free: Resources
    max: Resources


# -- filters ---------------------------------------------------------------------------------

class Filter(Protocol):
    name: str

    def passes(self, node: NodeView, need: Resources) -> bool: ...

    def refusal(self, node: NodeView, need: Resources) -> str:
        """Why this node was turned away, in a few words, for the trace."""
        ...


class FitsCores:
    name = "cores"

    def passes(self, node: NodeView, need: Resources) -> bool:
        return need.cores <= node.free.cores

    def refusal(self, node: NodeView, need: Resources) -> str:
        return f"{node.free.cores} of {need.cores} cores free"


class FitsMemory:
    name = "memory"

    def passes(self, node: NodeView, need: Resources) -> bool:
        return need.memory_mb <= node.free.memory_mb

    def refusal(self, node: NodeView, need: Resources) -> str:
        return f"{node.free.memory_mb} of {need.memory_mb} MB free"


class FitsDisk:
    name = "disk"

    def passes(self, node: NodeView, need: Resources) -> bool:
        return need.disk_gb <= node.free.disk_gb

    def refusal(self, node: NodeView, need: Resources) -> str:
        return f"{node.free.disk_gb} of {need.disk_gb} GB free"


class Awake:
    """Up, or asleep when the zone may wake nodes (POWERSAVE); never down."""
    name = "awake"

    def __init__(self, wakeable: bool = False) -> None:
        self.wakeable = wakeable

    def passes(self, node: NodeView, need: Resources) -> bool:
        return node.state == "up" or (self.wakeable and node.state == "asleep")

    def refusal(self, node: NodeView, need: Resources) -> str:
        return f"{node.state}"


class NotExcluded:
    """The request ruled some nodes out: a list of names or URLs, or all but the one an
    administrator named."""
    name = "not excluded"

    def __init__(self, excluded: Iterable[str] = (), only: str | None = None) -> None:
        self.excluded = frozenset(excluded)
        self.only = only

    def passes(self, node: NodeView, need: Resources) -> bool:
        if node.name in self.excluded or node.url in self.excluded:
            return False
        return self.only is None or self.only in (node.name, node.url)

    def refusal(self, node: NodeView, need: Resources) -> str:
        return "excluded by the request" if self.only is None else f"not {self.only}"


@dataclass
class FilterChain:
    """All filters in order; the cheap, most often decisive ones first."""
    filters: list[Filter] = field(default_factory=list)

    def first_refusal(self, node: NodeView, need: Resources) -> Filter | None:
        return next((f for f in self.filters if not f.passes(node, need)), None)

    def test(self, need: Resources) -> Callable[[NodeView], bool]:
        """The question a policy asks of each node it offers."""
        filters = self.filters

        def passes(node: NodeView) -> bool:
            return all(f.passes(node, need) for f in filters)
        return passes

    def explain(self, nodes: Iterable[NodeView], need: Resources, named: int = 3) -> str:
        """Why none of `nodes` passed: per filter, how many it turned away, and the first few."""
        turned: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        for node in nodes:
            refusing = self.first_refusal(node, need)
            if refusing is None:
                continue
            turned[refusing.name] += 1
            shown = examples.setdefault(refusing.name, [])
            if len(shown) < named:
                shown.append(f"{node.name}: {refusing.refusal(node, need)}")
        if not turned:
            return "no node to consider"
        return "; ".join(
            f"{name} turned away {count} node{'s' if count > 1 else ''} "
            f"({', '.join(examples[name])}{', …' if count > len(examples[name]) else ''})"
            for name, count in turned.most_common())


def standard_filters(wakeable: bool, excluded: NotExcluded | None = None) -> FilterChain:
    chain: list[Filter] = [Awake(wakeable)]
    if excluded is not None:
        chain.append(excluded)
    chain += [FitsCores(), FitsMemory(), FitsDisk()]
    return FilterChain(chain)


# -- policies --------------------------------------------------------------------------------

class Policy(Protocol):
    name: SchedPolicy
    # True for a policy that lets idle nodes sleep and wakes them when none awake has room
    # (power.py does the sleeping; the Awake filter then offers asleep nodes too).
    sleeps_idle_nodes: bool

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        """The node that gets the next instance, or None; offers nodes to `passes` one at a
        time and stops at the first it takes."""
        ...

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        """Every node this policy would offer, in its order (for the trace of a refusal)."""
        ...

    def why(self, node: NodeView) -> str:
        """One sentence for the teaching trace: why this node."""
        ...

    def snapshot(self) -> str:
        """The state worth keeping across a restart ("" when there is none)."""
        ...

    def restore(self, saved: str) -> None: ...


class _Stateless:
    """A policy with nothing to keep across a restart."""

    sleeps_idle_nodes = False

    def snapshot(self) -> str:
        return ""

    def restore(self, saved: str) -> None:
        pass


def _in_order(nodes: Sequence[NodeView]) -> Iterator[NodeView]:
    return (nodes[i] for i in range(len(nodes)))


class Greedy(_Stateless):
    """The first node, in registration order, that passes."""

    name: SchedPolicy = "GREEDY"

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        return _in_order(nodes)

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        return next((n for n in _in_order(nodes) if passes(n)), None)

    def why(self, node: NodeView) -> str:
        return f"GREEDY: {node.name} is the first node in registration order with room"


class RoundRobin:
    """From a saved pointer, the next node that passes; the pointer moves past it."""

    name: SchedPolicy = "ROUNDROBIN"
    sleeps_idle_nodes = False

    def __init__(self, pointer: int = 0) -> None:
        self.pointer = pointer

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        count = len(nodes)
        start = self.pointer % count if count else 0
        return (nodes[(start + offset) % count] for offset in range(count))

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        for node in self.candidates(nodes):
            if passes(node):
                self.pointer = (node.index + 1) % len(nodes)
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
    sleeps_idle_nodes = True

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        awake = (n for n in _in_order(nodes) if n.state == "up")
        asleep = (n for n in _in_order(nodes) if n.state != "up")
        yield from awake
        yield from asleep

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        return next((n for n in self.candidates(nodes) if passes(n)), None)

    def why(self, node: NodeView) -> str:
        if node.state == "asleep":
            return f"POWERSAVE: no awake node has room, so {node.name} is woken"
        return f"POWERSAVE: {node.name} is the first awake node with room"


class TargetNode(_Stateless):
    """An administrator named the node (the request's NotExcluded filter says which): the
    zone's policy is bypassed and only that node, at `index`, is offered."""

    def __init__(self, policy: SchedPolicy, index: int) -> None:
        self.name: SchedPolicy = policy
        self._index = index

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        yield nodes[self._index]

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        node = nodes[self._index]
        return node if passes(node) else None

    def why(self, node: NodeView) -> str:
        return f"an administrator asked for {node.name}"


class LeastLoaded(_Stateless):
    """Spread: the awake node with the most free cores (then memory), ties in registration
    order. It looks at every node for every instance, so it costs O(nodes) a decision where
    GREEDY costs a few checks; fine for a lab, slow for a zone of 20,000 nodes."""

    name: SchedPolicy = "LEASTLOADED"

    def candidates(self, nodes: Sequence[NodeView]) -> Iterator[NodeView]:
        return iter(sorted(_in_order(nodes), key=lambda n: (-n.free.cores, -n.free.memory_mb, n.index)))

    def choose(self, nodes: Sequence[NodeView], passes: Callable[[NodeView], bool]) -> NodeView | None:
        return next((n for n in self.candidates(nodes) if passes(n)), None)

    def why(self, node: NodeView) -> str:
        return f"LEASTLOADED: {node.name} has the most free cores ({node.free.cores}) of the nodes with room"


# Every SCHEDPOLICY the CC knows, by name. A new policy is one class with a `name`, the four
# methods of Policy and `sleeps_idle_nodes`, added here (README: "Adding a policy").
POLICIES: dict[str, Callable[[], Policy]] = {
    cls.name: cls for cls in (Greedy, RoundRobin, PowerSave, LeastLoaded)}


class UnknownPolicy(ValueError):
    pass


def make_policy(name: SchedPolicy, saved: str | None = None) -> Policy:
    factory = POLICIES.get(name)
    if factory is None:
        raise UnknownPolicy(f"SCHEDPOLICY={name!r}: not a policy this CC knows ({', '.join(POLICIES)})")
    policy: Policy = factory()
    if saved:
        policy.restore(saved)
    return policy
