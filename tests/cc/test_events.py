"""State pushed upstream, and polls of whole NC processes, on a real CC process in front of
fake NC processes that speak the NC contract (tests/cc/fake_nc.py) and a CLC stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.messages.cluster import (CC_DESCRIBE_ROUTE, CC_NODES_ROUTE, DescribeZone, NodeInfo,
                                       RegisterNode, ZoneReport)
from services.internal import InternalCallError
from services.messages.node import Subscription
from tests.cc.cc_process import CcProcess, start_cc, wait_for
from tests.cc.conftest import SECRET
from tests.cc.fake_nc import ClcStandIn, FakeNc
from tests.cc.zone import SMALL, Zone
from tests.support.servers import running

NODES = ["/node-1", "/node-2", "/node-3"]


@pytest.fixture
def start_zone(tmp_path: Path) -> Iterator[Callable[..., Zone]]:
    started: list[CcProcess] = []

    def start(urls: list[str], **settings: object) -> Zone:
        cc = start_cc(tmp_path / f"cc-{len(started)}", SECRET, NODES=" ".join(urls),
                      SCHEDPOLICY="GREEDY", **{"NC_POLLING_FREQUENCY": 0.2, **settings})  # type: ignore[arg-type]
        started.append(cc)
        return Zone(cc)

    yield start
    for cc in started:
        cc.stop()


def test_a_pushed_change_reaches_a_subscribed_clc_without_waiting_for_a_poll(start_zone):
    nc, clc = FakeNc(SECRET, NODES), ClcStandIn(SECRET)
    with running(nc.app) as nc_url, running(clc.app) as clc_url:
        # Poll rounds an hour apart: only the first round (at start) and the pushes tell the CC.
        zone = start_zone([nc_url + p for p in NODES], NC_POLLING_FREQUENCY=3600)
        zone.wait_states({"node-1": "up", "node-2": "up", "node-3": "up"})
        # The CC subscribed to the NC process with its own URL, keyed by the process's root.
        assert nc.subscription == Subscription(url=zone.cc.url, key=nc_url)
        report = zone.call("POST", CC_DESCRIBE_ROUTE,
                           DescribeZone(subscribe=Subscription(url=clc_url, key="zone-1")), ZoneReport)
        assert report.instances == [] and len(report.capacity.nodes) == 3
        first_version = report.capacity.version

        placed = zone.run(SMALL, count=2)
        assert placed.capacity_version > first_version
        ids = [p.instance_id for p in placed.placed]
        # The placement itself is pushed: both instances pending, the capacity view with them.
        wait_for(lambda: clc.instance_states() == dict.fromkeys(ids, "pending"), 20,
                 "the CLC to hear of two pending instances")
        wait_for(lambda: any(e.capacity and e.capacity.version >= placed.capacity_version
                             for e in clc.received), 20, "a capacity view that counts them")

        # The NC says they run: pushed to the CC, relayed to the CLC, no poll in between.
        polls = nc.calls["describe"]
        for iid in ids:
            nc.set_state("/node-1", iid, "running")
        nc.push()
        wait_for(lambda: clc.instance_states() == dict.fromkeys(ids, "running"), 20,
                 "the CLC to hear they run")
        assert nc.calls["describe"] == polls
        assert {i.instance_id: i.state for i in zone.instances().instances} == dict.fromkeys(ids, "running")
        last = [e for e in clc.received if e.capacity][-1]
        node_1 = next(n for n in last.capacity.nodes if n.name == "node-1")
        assert node_1.free.cores == 8 - 2
        assert all(e.key == "zone-1" and e.zone == "zone-1" for e in clc.received)


def test_events_for_an_unknown_node_change_nothing(start_zone):
    nc = FakeNc(SECRET, NODES)
    with running(nc.app) as nc_url:
        zone = start_zone([nc_url + "/node-1"], NC_POLLING_FREQUENCY=3600)
        zone.wait_states({"node-1": "up"})
        placed = zone.run(SMALL).placed[0]
        # node-2 is served by the same process but not registered in this zone.
        nc.add_instance("/node-2", placed.report.model_copy(update={"instance_id": "i-0000beef",
                                                                     "node_id": "node-2"}))
        nc.push()
        assert [i.instance_id for i in zone.instances().instances] == [placed.instance_id]


def test_one_describe_call_per_nc_process_per_round(start_zone):
    simulated, single = FakeNc(SECRET, NODES), FakeNc(SECRET, [""])
    with running(simulated.app) as many_url, running(single.app) as one_url:
        zone = start_zone([many_url + p for p in NODES] + [one_url])
        wait_for(lambda: simulated.calls["describe"] >= 5 and single.calls["describe"] >= 5, 30,
                 "five poll rounds")
        names = sorted(n.name for n in zone.nodes().nodes)
        zone.cc.stop()
        # Each round asked each process once, whatever the number of nodes it serves, and
        # never node by node.
        assert abs(simulated.calls["describe"] - single.calls["describe"]) <= 1
        assert simulated.calls["resources"] == simulated.calls["instances"] == 0
        assert single.calls["resources"] == single.calls["instances"] == 0
        assert {s.key for s in simulated.subscriptions} == {many_url}
        assert {s.key for s in single.subscriptions} == {one_url}
        assert names == ["node-0", "node-1", "node-2", "node-3"]


def test_an_nc_without_the_describe_route_is_polled_node_by_node(start_zone):
    old = FakeNc(SECRET, NODES[:2], describe=False)
    with running(old.app) as url:
        zone = start_zone([url + p for p in NODES[:2]])
        zone.wait_states({"node-1": "up", "node-2": "up"})
        assert old.calls["resources"] >= 2 and old.calls["instances"] >= 2


def test_a_malformed_answer_is_logged_as_a_bug_and_no_node_goes_down(start_zone):
    nc = FakeNc(SECRET, NODES)
    with running(nc.app) as url:
        zone = start_zone([url + p for p in NODES])
        zone.wait_states(dict.fromkeys(["node-1", "node-2", "node-3"], "up"))
        nc.malformed = True
        rounds = nc.calls["describe"]
        # Well past the three missed polls that would make a node down.
        wait_for(lambda: nc.calls["describe"] >= rounds + 6, 30, "six more poll rounds")
        nodes = zone.nodes().nodes
        assert [(n.state, n.missed_polls) for n in nodes] == [("up", 0)] * 3
        log = zone.cc.log()
        assert f"poll of the NC process at {url} failed (a bug, not a down node)" in log
        assert "ValidationError" in log


def test_a_registration_answers_once_the_clc_has_the_new_nodes_capacity(start_zone):
    """RunInstances is admitted against the CLC's view: a launch right after `eucasim node
    register` must find the new node there, however slowly the CLC takes the push."""
    nc, clc = FakeNc(SECRET, NODES[:2]), ClcStandIn(SECRET, delay=1.0)
    with running(nc.app) as nc_url, running(clc.app) as clc_url:
        zone = start_zone([nc_url + NODES[0]], NC_POLLING_FREQUENCY=3600)
        zone.wait_states({"node-1": "up"})
        zone.call("POST", CC_DESCRIBE_ROUTE,
                  DescribeZone(subscribe=Subscription(url=clc_url, key="zone-1")), ZoneReport)
        info = zone.call("POST", CC_NODES_ROUTE, RegisterNode(url=nc_url + NODES[1]), NodeInfo)
        assert (info.name, info.state) == ("node-2", "up")
        # Already there when the registration answered: no wait for the push.
        assert any(n.name == "node-2" and n.state == "up"
                   for e in clc.received if e.capacity for n in e.capacity.nodes)


def test_a_second_node_of_the_same_name_is_refused_and_says_why(start_zone):
    """Two hosts whose NCs report one node id (each left with the default PUBLIC_HOST) would be
    counted as one node: the second registration is refused and leaves nothing behind."""
    first, second = FakeNc(SECRET, ["/node-1"]), FakeNc(SECRET, ["/node-1"])
    with running(first.app) as first_url, running(second.app) as second_url:
        zone = start_zone([first_url + "/node-1"], NC_POLLING_FREQUENCY=3600)
        zone.wait_states({"node-1": "up"})
        with pytest.raises(InternalCallError) as refused:
            zone.call("POST", CC_NODES_ROUTE, RegisterNode(url=second_url + "/node-1"), NodeInfo)
        assert refused.value.status == 409
        message = refused.value.detail["message"]
        assert f"at {second_url}/node-1 calls itself 'node-1', as the one at {first_url}/node-1" in message
        assert "PUBLIC_HOST" in message
        assert [(n.url, n.state) for n in zone.nodes().nodes] == [(first_url + "/node-1", "up")]


def test_a_clc_that_takes_deltas_gets_only_the_nodes_whose_capacity_changed(start_zone):
    nc, clc = FakeNc(SECRET, NODES), ClcStandIn(SECRET, deltas=True)
    with running(nc.app) as nc_url, running(clc.app) as clc_url:
        zone = start_zone([nc_url + p for p in NODES], NC_POLLING_FREQUENCY=3600)
        zone.wait_states({"node-1": "up", "node-2": "up", "node-3": "up"})
        zone.call("POST", CC_DESCRIBE_ROUTE, DescribeZone(subscribe=Subscription(url=clc_url, key="zone-1")),
                  ZoneReport)
        for _ in range(3):      # GREEDY: each on node-1
            placed = zone.run(SMALL)
            wait_for(lambda: clc.capacity_version >= placed.capacity_version, 20, "the view that counts it")
        whole = zone.call("POST", CC_DESCRIBE_ROUTE, DescribeZone(), ZoneReport).capacity
    deltas = [e.capacity for e in clc.received if e.capacity is not None and e.capacity.base is not None]
    assert deltas and all([n.name for n in d.nodes] == ["node-1"] for d in deltas)
    assert clc.capacity is not None
    assert {n.name: n.free for n in whole.nodes} == {name: n.free for name, n in clc.capacity.items()}
    assert clc.capacity["node-1"].free.cores == 8 - 3
