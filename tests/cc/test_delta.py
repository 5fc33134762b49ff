"""The CC's polls as deltas, and how long an ended instance stays in the zone's view: a real
CC process in front of a real NC (in this process, fake hypervisor, so the test can read
its counters and shorten its window), and a CLC stand-in that takes the CC's pushes.

An ended instance leaves the CC's view once its NC has forgotten it (the NC does once the CC
has seen the end) and the CLC has been told; until the CLC has heard, the CC keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.messages.cluster import (CC_DESCRIBE_ROUTE, CC_INSTANCES_ROUTE, ClusterInstanceList,
                                       DescribeZone, ZoneReport)
from services.messages.node import NC_DESCRIBE_ROUTE, DescribeNodes, NodeProcessReport, Subscription
from cc.poller import FULL_EVERY
from tests.cc.cc_process import CcProcess, start_cc, wait_for
from tests.cc.fake_nc import ClcStandIn
from tests.cc.zone import SMALL, Zone
from tests.nc.conftest import DRIVERS, SECRET, Node, start_node
from tests.support.servers import PortHold, running


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    # Forget an instance the CC has seen end at once (30 s in service), so the test need
    # not wait for the window.
    monkeypatch.setattr("nc.instances.FORGET_SEEN", timedelta(0))
    monkeypatch.setattr("nc.process.FORGET_SEEN", timedelta(0))
    with start_node(tmp_path / "nc", DRIVERS["fake"], NC_POLLING_FREQUENCY=0.2,
                    NC_NODE_ID="node-a") as started:
        yield started


@pytest.fixture
def cc(tmp_path: Path, node: Node) -> Iterator[CcProcess]:
    process = start_cc(tmp_path / "cc", SECRET, NODES=node.url, NC_POLLING_FREQUENCY=0.2)
    try:
        Zone(process).wait_states({"node-a": "up"})
        yield process
    finally:
        process.stop()


def cc_states(cc: CcProcess) -> dict[str, str]:
    listing = cc.client.call("GET", CC_INSTANCES_ROUTE, response=ClusterInstanceList)
    return {i.instance_id: i.state for i in listing.instances}


def nc_ids(node: Node) -> list[str]:
    report = node.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
    return [i.instance_id for s in report.nodes for i in s.instances]


def subscribe(cc: CcProcess, url: str) -> ZoneReport:
    return cc.client.call("POST", CC_DESCRIBE_ROUTE, DescribeZone(subscribe=Subscription(url=url, key="zone-1")),
                          ZoneReport)


def launch(cc: CcProcess) -> str:
    result = Zone(cc).run(SMALL)
    assert result.placed and result.placed[0].report is not None, result
    return result.placed[0].instance_id


def test_rounds_after_the_first_are_deltas(cc: CcProcess, node: Node) -> None:
    wait_for(lambda: node.process.answers["delta"] >= 5, 30, "five delta polls")
    answers = dict(node.process.answers)
    # Whole answers: the first, and one in every FULL_EVERY rounds after it.
    assert answers["whole"] <= 1 + answers["delta"] // (FULL_EVERY - 1)
    instance = launch(cc)
    wait_for(lambda: cc_states(cc).get(instance) == "running", 20, "the CC to see it running")


def test_an_ended_instance_leaves_the_zone_once_the_clc_has_been_told(cc: CcProcess, node: Node) -> None:
    clc = ClcStandIn(SECRET)
    with running(clc.app) as clc_url:
        subscribe(cc, clc_url)
        instance = launch(cc)
        wait_for(lambda: clc.instance_states().get(instance) == "running", 20, "the CLC told it runs")
        cc.client.call("POST", f"/internal/instances/{instance}/terminate")
        wait_for(lambda: clc.instance_states().get(instance) == "terminated", 20, "the CLC told it ended")
        wait_for(lambda: instance not in cc_states(cc), 30, "the CC to forget it")
    assert instance not in nc_ids(node)
    assert clc.instance_states()[instance] == "terminated"


def test_an_ended_instance_stays_while_the_clc_has_not_heard(cc: CcProcess, node: Node) -> None:
    hold = PortHold()       # a CLC that is down: nothing listens there
    try:
        subscribe(cc, f"http://127.0.0.1:{hold.port}")
        instance = launch(cc)
        wait_for(lambda: cc_states(cc).get(instance) == "running", 20, "the CC to see it running")
        cc.client.call("POST", f"/internal/instances/{instance}/terminate")
        wait_for(lambda: cc_states(cc).get(instance) == "terminated", 20, "the CC to see it end")
        # The CC has seen the end, so its NC forgets the instance; every push to the CLC failed.
        wait_for(lambda: instance not in nc_ids(node), 30, "the NC to forget it")
        # Two more polls of the CC: the first answer after that says the instance is gone.
        polled = sum(node.process.answers.values())
        wait_for(lambda: sum(node.process.answers.values()) >= polled + 2, 30, "two more polls")
        assert cc_states(cc)[instance] == "terminated"
    finally:
        hold.close()
    # The CLC's round describes the zone: it has heard now, and the CC lets the instance go.
    clc = ClcStandIn(SECRET)
    with running(clc.app) as clc_url:
        assert {i.instance_id: i.state for i in subscribe(cc, clc_url).instances}[instance] == "terminated"
        wait_for(lambda: instance not in cc_states(cc), 30, "the CC to forget it")
