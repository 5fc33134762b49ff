"""LEASTLOADED, the policy added as one class (cc/scheduler.py): the example README's
"Adding a policy" follows, and every policy is known by name."""

from __future__ import annotations

import pytest

from cc.scheduler import POLICIES, LeastLoaded, NodeView, UnknownPolicy, make_policy, standard_filters
from services.config import SCHED_POLICIES
from services.messages.node import Resources


def view(index: int, free_cores: int, state: str = "up") -> NodeView:
    return NodeView(index, f"node-{index + 1}", f"http://h/node-{index + 1}", state,  # type: ignore[arg-type]
                    Resources(cores=free_cores, memory_mb=4096, disk_gb=100),
                    Resources(cores=8, memory_mb=4096, disk_gb=100))


def test_least_loaded_takes_the_node_with_most_free_cores_ties_in_order() -> None:
    nodes = [view(0, 2), view(1, 6), view(2, 6), view(3, 8, state="down")]
    passes = standard_filters(wakeable=False).test(Resources(cores=1, memory_mb=256, disk_gb=5))
    chosen = LeastLoaded().choose(nodes, passes)
    assert chosen is not None and chosen.name == "node-2"
    assert "most free cores (6)" in LeastLoaded().why(chosen)
    assert LeastLoaded().choose(nodes, standard_filters(wakeable=False).test(
        Resources(cores=7, memory_mb=256, disk_gb=5))) is None


def test_every_policy_by_name_and_an_unknown_one_refused() -> None:
    assert set(POLICIES) == set(SCHED_POLICIES) >= {"GREEDY", "ROUNDROBIN", "POWERSAVE", "LEASTLOADED"}
    assert [make_policy(n).sleeps_idle_nodes for n in ("GREEDY", "ROUNDROBIN", "POWERSAVE", "LEASTLOADED")] == \
        [False, False, True, False]
    with pytest.raises(UnknownPolicy, match="SCHEDPOLICY='FASTEST'"):
        make_policy("FASTEST")
