"""Each scheduler filter answers one question about one node; the chain says which filter
turned each node away when none passes."""

from __future__ import annotations

from cc.scheduler import (Awake, FilterChain, FitsCores, FitsDisk, FitsMemory, NodeView,
                          NotExcluded, standard_filters)
from services.messages.node import Resources

NEED = Resources(cores=2, memory_mb=1024, disk_gb=10)


def node(cores: int = 8, mem: int = 8192, disk: int = 100, state: str = "up",
         name: str = "node-1") -> NodeView:
    free = Resources(cores=cores, memory_mb=mem, disk_gb=disk)
    return NodeView(index=0, name=name, url=f"http://h/{name}", state=state,  # type: ignore[arg-type]
                    free=free, max=free)


def test_fits_cores():
    assert FitsCores().passes(node(cores=2), NEED)
    assert not FitsCores().passes(node(cores=1), NEED)
    assert FitsCores().refusal(node(cores=1), NEED) == "1 of 2 cores free"


def test_fits_memory():
    assert FitsMemory().passes(node(mem=1024), NEED)
    assert not FitsMemory().passes(node(mem=1023), NEED)
    assert FitsMemory().refusal(node(mem=1023), NEED) == "1023 of 1024 MB free"


def test_fits_disk():
    assert FitsDisk().passes(node(disk=10), NEED)
    assert not FitsDisk().passes(node(disk=9), NEED)
    assert FitsDisk().refusal(node(disk=9), NEED) == "9 of 10 GB free"


def test_awake_takes_up_nodes_and_sleeping_ones_only_when_they_may_be_woken():
    assert Awake().passes(node(state="up"), NEED)
    assert not Awake().passes(node(state="asleep"), NEED)
    assert not Awake().passes(node(state="down"), NEED)
    assert Awake(wakeable=True).passes(node(state="asleep"), NEED)
    assert not Awake(wakeable=True).passes(node(state="down"), NEED)
    assert Awake().refusal(node(state="down"), NEED) == "down"


def test_not_excluded_by_name_or_url_or_by_naming_another_node():
    assert not NotExcluded(["node-1"]).passes(node(), NEED)
    assert not NotExcluded(["http://h/node-1"]).passes(node(), NEED)
    assert NotExcluded(["node-2"]).passes(node(), NEED)
    assert NotExcluded(only="node-1").passes(node(), NEED)
    assert not NotExcluded(only="node-2").passes(node(), NEED)
    assert NotExcluded(only="node-2").refusal(node(), NEED) == "not node-2"


def test_the_chain_asks_in_order_and_names_the_first_filter_that_refuses():
    chain = standard_filters(wakeable=False)
    assert chain.first_refusal(node(), NEED) is None
    assert chain.first_refusal(node(cores=0, mem=0), NEED).name == "cores"
    assert chain.first_refusal(node(cores=0, state="down"), NEED).name == "awake"
    passes = chain.test(NEED)
    assert passes(node()) and not passes(node(disk=1))


def test_explain_counts_the_nodes_each_filter_turned_away():
    views = [node(cores=1, name="node-1"), node(cores=0, name="node-2"),
             node(state="down", name="node-3"), node(mem=10, name="node-4"),
             node(cores=1, name="node-5"), node(cores=1, name="node-6"), node(name="node-7")]
    why = standard_filters(wakeable=False).explain(views, NEED)
    assert why == ("cores turned away 4 nodes (node-1: 1 of 2 cores free, node-2: 0 of 2 cores "
                   "free, node-5: 1 of 2 cores free, …); awake turned away 1 node (node-3: down); "
                   "memory turned away 1 node (node-4: 10 of 1024 MB free)")
    assert FilterChain([]).explain([], NEED) == "no node to consider"
