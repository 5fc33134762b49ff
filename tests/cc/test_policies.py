"""Each scheduling policy on plain NodeView lists, behind the standard filters: which node gets
the next instance, and why."""

from __future__ import annotations

from dataclasses import replace

from cc.capacity import availability, how_many
from cc.scheduler import (Greedy, NodeView, NotExcluded, PowerSave, RoundRobin, TargetNode,
                          make_policy, standard_filters)
from services.messages.node import Resources, VmType

SMALL = VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5)
XLARGE = VmType(name="c1.xlarge", cpu=4, memory_mb=2048, disk_gb=20)


def res(cores: int, mem: int = 100_000, disk: int = 1000) -> Resources:
    return Resources(cores=cores, memory_mb=mem, disk_gb=disk)


def nodes(*cores: int, state: str = "up") -> list[NodeView]:
    return [NodeView(index=i, name=f"node-{i + 1}", url=f"http://n{i + 1}", state=state,  # type: ignore[arg-type]
                     free=res(c), max=res(c)) for i, c in enumerate(cores)]


def place(policy, views: list[NodeView], vm: VmType, count: int, wakeable: bool = False,
          excluded: NotExcluded | None = None) -> list[str]:
    """Place `count` instances one by one, taking each from its node as a reservation does."""
    passes = standard_filters(wakeable, excluded).test(vm.needs())
    out = []
    for _ in range(count):
        chosen = policy.choose(views, passes)
        if chosen is None:
            out.append("-")
            continue
        views[chosen.index] = replace(chosen, free=chosen.free.minus(vm.needs()))
        out.append(chosen.name)
    return out


class CountingViews(list):
    """A node list that counts how many nodes a policy looked at."""
    looked = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        self.looked += 1
        return super().__getitem__(index)


def test_greedy_fills_the_first_node_before_the_next():
    policy = Greedy()
    assert place(policy, nodes(2, 4, 8), SMALL, 7) == ["node-1"] * 2 + ["node-2"] * 4 + ["node-3"]
    assert policy.why(nodes(2)[0]).startswith("GREEDY: node-1 is the first node")


def test_greedy_skips_nodes_too_small_for_the_type():
    assert place(Greedy(), nodes(2, 4, 8), XLARGE, 4) == ["node-2", "node-3", "node-3", "-"]


def test_greedy_and_round_robin_look_at_one_node_while_it_has_room():
    passes = standard_filters(False).test(SMALL.needs())
    views = CountingViews(nodes(*[8] * 10_000))
    assert Greedy().choose(views, passes).name == "node-1"
    policy = RoundRobin(pointer=5_000)
    assert policy.choose(views, passes).name == "node-5001"
    assert views.looked == 2


def test_round_robin_spreads_and_remembers_its_pointer():
    policy = RoundRobin()
    assert place(policy, nodes(2, 4, 8), SMALL, 5) == ["node-1", "node-2", "node-3", "node-1", "node-2"]
    assert policy.pointer == 2
    assert "pointer now points at position 2" in policy.why(nodes(2)[0])
    again = make_policy("ROUNDROBIN", policy.snapshot())
    assert place(again, nodes(2, 4, 8), SMALL, 1) == ["node-3"]


def test_round_robin_passes_over_full_nodes_and_moves_past_the_one_chosen():
    policy = RoundRobin()
    assert place(policy, nodes(2, 4, 8), XLARGE, 3) == ["node-2", "node-3", "node-3"]
    assert policy.pointer == 0


def test_greedy_and_round_robin_never_choose_a_down_or_sleeping_node():
    views = nodes(8, 8, 8)
    views[0] = replace(views[0], state="asleep")
    views[1] = replace(views[1], state="down")
    assert place(Greedy(), list(views), SMALL, 1) == ["node-3"]
    assert place(RoundRobin(), list(views), SMALL, 1) == ["node-3"]


def test_powersave_packs_awake_nodes_before_waking_one():
    views = nodes(2, 4, 8)
    views[0] = replace(views[0], state="asleep")
    views[2] = replace(views[2], state="asleep")
    assert place(PowerSave(), views, SMALL, 8, wakeable=True) == ["node-2"] * 4 + ["node-1"] * 2 + ["node-3"] * 2
    assert PowerSave().why(views[0]) == "POWERSAVE: no awake node has room, so node-1 is woken"
    # A down node is never woken.
    down = [replace(nodes(8)[0], state="down")]
    assert place(PowerSave(), down, SMALL, 1, wakeable=True) == ["-"]


def test_target_node_offers_only_that_node_and_keeps_the_filters():
    only = NotExcluded(only="node-3")
    policy = TargetNode("GREEDY", 2)
    assert place(policy, nodes(2, 4, 8), XLARGE, 3, excluded=only) == ["node-3", "node-3", "-"]
    assert policy.why(nodes(2, 4, 8)[2]) == "an administrator asked for node-3"
    # The awake check applies to a named node too.
    asleep = nodes(2, 4, 8)
    asleep[2] = replace(asleep[2], state="asleep")
    assert place(TargetNode("GREEDY", 2), asleep, SMALL, 1, excluded=only) == ["-"]
    assert place(TargetNode("POWERSAVE", 2), asleep, SMALL, 1, wakeable=True, excluded=only) == ["node-3"]


def test_a_failed_choice_restores_nothing_it_should_not():
    policy = RoundRobin(pointer=1)
    passes = standard_filters(False).test(XLARGE.needs())
    assert policy.choose(nodes(2, 2, 2), passes) is None
    assert policy.pointer == 1
    assert [n.name for n in policy.candidates(nodes(2, 2, 2))] == ["node-2", "node-3", "node-1"]


def test_capacity_counts_each_type_alone_per_node():
    views = nodes(2, 4, 8)
    views[2] = replace(views[2], free=res(3))
    assert how_many(res(8, mem=1024), SMALL.needs()) == 4
    small, xlarge = availability(views, [SMALL, XLARGE])
    assert (small.free, small.max) == (2 + 4 + 3, 2 + 4 + 8)
    assert (xlarge.free, xlarge.max) == (0 + 1 + 0, 0 + 1 + 2)
