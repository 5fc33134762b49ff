"""Capacity on a real zone: twenty concurrent requests never overbook a node, a request that
cannot fit is refused whole, and describe-resources gives the numbers behind
`euca-describe-availability-zones verbose`."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.internal import InternalCallError, InternalClient
from services.messages.node import NodeResources
from tests.cc.cc_process import wait_for
from tests.cc.conftest import CORES, NODE_NAMES, SECRET
from tests.cc.zone import SMALL, XLARGE, Zone, run_request


def live_per_node(zone: Zone) -> Counter[str]:
    return Counter(i.node_id for i in zone.instances().instances if i.state != "terminated")


def nc_figures(nc) -> list[NodeResources]:
    out = []
    for url in nc.node_urls:
        client = InternalClient(url, SECRET)
        out.append(client.call("GET", "/internal/resources", response=NodeResources))
        client.close()
    return out


def test_twenty_concurrent_requests_never_overbook_a_node(zone_factory):
    zone, nc = zone_factory("ROUNDROBIN")

    def one(_: int) -> str:
        try:
            result = zone.run(SMALL)
        except InternalCallError as exc:
            return exc.detail["code"]
        assert result.placed[0].reason is None, result.placed[0].reason
        return result.placed[0].node

    with ThreadPoolExecutor(20) as pool:
        outcomes = Counter(pool.map(one, range(20)))
    # 2 + 4 + 8 cores hold fourteen m1.small; the other six are refused, none started twice.
    assert outcomes == {"node-1": 2, "node-2": 4, "node-3": 8, "InsufficientInstanceCapacity": 6}
    assert all(f.free.cores == 0 for f in nc_figures(nc))
    wait_for(lambda: live_per_node(zone) == Counter(dict(zip(NODE_NAMES, CORES, strict=True))), 20,
             "the CC to describe fourteen instances")


def test_a_request_that_cannot_fit_is_refused_whole(zone_factory):
    zone, nc = zone_factory("GREEDY")
    refused = zone.refused(SMALL, count=15)
    assert refused["code"] == "InsufficientInstanceCapacity"
    assert "only 14 fit" in refused["message"]
    assert zone.refused(XLARGE, count=4)["code"] == "InsufficientInstanceCapacity"
    # Nothing was started anywhere, nothing is left reserved.
    assert live_per_node(zone) == Counter()
    assert all(f.free == f.max for f in nc_figures(nc))
    assert all(n.reserved.cores == 0 for n in zone.nodes().nodes)
    # Between MinCount and MaxCount the CC places what fits and says what it did not.
    result = zone.call("POST", "/internal/instances", run_request(SMALL, count=20, min_count=2))
    assert len(result["placed"]) == 14 and len(result["not_placed"]) == 6


def test_describe_resources_and_instances_with_their_nodes(zone_factory):
    zone, _ = zone_factory("GREEDY")
    small, xlarge = zone.resources(SMALL, XLARGE).types
    assert (small.free, small.max, xlarge.free, xlarge.max) == (14, 14, 3, 3)

    big = zone.run(XLARGE, target="node-3").placed[0].instance_id
    little = zone.run(SMALL).placed[0].instance_id      # GREEDY: node-1
    # At once (the CC's reservation) and after the NCs report it (their own figures).
    for _ in range(2):
        answer = zone.resources(SMALL, XLARGE)
        small, xlarge = answer.types
        assert (small.free, small.max) == (1 + 4 + 4, 14)
        assert (xlarge.free, xlarge.max) == (0 + 1 + 1, 3)
        assert (answer.nodes_up, answer.nodes_down, answer.nodes_asleep) == (3, 0, 0)
        wait_for(lambda: all(n.reserved.cores == 0 for n in zone.nodes().nodes), 20,
                 "the reservations to settle")

    def running() -> dict[str, str]:
        listed = {i.instance_id: i for i in zone.instances().instances}
        ok = all(i in listed and listed[i].state == "running" for i in (big, little))
        return {i: listed[i].node_id for i in (big, little)} if ok else {}

    assert wait_for(running, 20, "both instances to run") == {big: "node-3", little: "node-1"}
    console = zone.call("GET", f"/internal/instances/{little}/console")
    assert console["instance_id"] == little and console["output"]
    with pytest.raises(InternalCallError) as unknown:
        zone.call("GET", "/internal/instances/i-deadbeef/console")
    assert unknown.value.detail["code"] == "InvalidInstanceID.NotFound"
