"""Each scheduling policy on plain NodeView lists: which node gets the next instance."""

from __future__ import annotations

from dataclasses import replace

from cc.capacity import availability, how_many
from cc.registry import NodeView
from cc.scheduler import Greedy, PowerSave, RoundRobin, TargetNode, make_policy
from services.messages.node import Resources, VmType

SMALL = VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5)
XLARGE = VmType(name="c1.xlarge", cpu=4, memory_mb=2048, disk_gb=20)


def res(cores: int, mem: int = 100_000, disk: int = 1000) -> Resources:
    return Resources(cores=cores, memory_mb=mem, disk_gb=disk)


def nodes(*cores: int, state: str = "up") -> list[NodeView]:
    return [NodeView(index=i, name=f"node-{i + 1}", url=f"http://n{i + 1}", state=state,  # type: ignore[arg-type]
                     free=res(c), max=res(c)) for i, c in enumerate(cores)]


def place(policy, views: list[NodeView], vm: VmType, count: int) -> list[str]:
    """Place `count` instances one by one, taking each from its node as placement.py does."""
    out = []
    for _ in range(count):
        chosen = policy.choose(views, vm.needs())
        if chosen is None:
            out.append("-")
            continue
        views[chosen.index] = replace(chosen, free=chosen.free.minus(vm.needs()))
        out.append(chosen.name)
    return out


def test_greedy_fills_the_first_node_before_the_next():
    assert place(Greedy(), nodes(2, 4, 8), SMALL, 7) == ["node-1"] * 2 + ["node-2"] * 4 + ["node-3"]


def test_greedy_skips_nodes_too_small_for_the_type():
    assert place(Greedy(), nodes(2, 4, 8), XLARGE, 4) == ["node-2", "node-3", "node-3", "-"]


def test_round_robin_spreads_and_remembers_its_pointer():
    policy = RoundRobin()
    assert place(policy, nodes(2, 4, 8), SMALL, 5) == ["node-1", "node-2", "node-3", "node-1", "node-2"]
    assert policy.pointer == 2
    again = make_policy("ROUNDROBIN", policy.snapshot())
    assert place(again, nodes(2, 4, 8), SMALL, 1) == ["node-3"]


def test_round_robin_passes_over_full_nodes_and_moves_past_the_one_chosen():
    policy = RoundRobin()
    assert place(policy, nodes(2, 4, 8), XLARGE, 3) == ["node-2", "node-3", "node-3"]
    assert policy.pointer == 0


def test_policies_never_choose_a_down_or_sleeping_node_except_powersave_waking():
    views = nodes(8, 8)
    views[0] = replace(views[0], state="asleep")
    assert Greedy().choose(views, SMALL.needs()).name == "node-2"
    assert RoundRobin().choose(views, SMALL.needs()).name == "node-2"
    full = [replace(views[0]), replace(views[1], free=res(0))]
    assert Greedy().choose(full, SMALL.needs()) is None
    assert PowerSave().choose(full, SMALL.needs()).name == "node-1"


def test_powersave_packs_awake_nodes_before_waking_one():
    views = nodes(2, 4, 8)
    views[2] = replace(views[2], state="asleep")
    assert place(PowerSave(), views, SMALL, 8) == ["node-1"] * 2 + ["node-2"] * 4 + ["node-3"] * 2


def test_target_node_considers_only_that_node():
    assert place(TargetNode("GREEDY", "node-3"), nodes(2, 4, 8), XLARGE, 3) == ["node-3", "node-3", "-"]


def test_capacity_counts_each_type_alone_per_node():
    views = nodes(2, 4, 8)
    views[2] = replace(views[2], free=res(3))
    assert how_many(res(8, mem=1024), SMALL.needs()) == 4
    small, xlarge = availability(views, [SMALL, XLARGE])
    assert (small.free, small.max) == (2 + 4 + 3, 2 + 4 + 8)
    assert (xlarge.free, xlarge.max) == (0 + 1 + 0, 0 + 1 + 2)
