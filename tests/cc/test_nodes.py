"""The node registry on a real zone: nodes registered and deregistered through the API, and an
NC killed with SIGKILL that goes down and comes back with its instances."""

from __future__ import annotations

import httpx
import pytest

from services.internal import InternalCallError
from services.messages.cluster import NodeInfo, RegisterNode
from tests.cc.cc_process import wait_for
from tests.cc.zone import SMALL


def test_nodes_are_registered_and_deregistered(zone_factory, shared_nc):
    zone, _ = zone_factory("GREEDY", nodes=False)
    assert zone.nodes().nodes == []
    first, second = shared_nc.node_urls[:2]
    info = zone.call("POST", "/internal/nodes", RegisterNode(url=first), NodeInfo)
    assert (info.name, info.state, info.source, info.max.cores) == ("node-1", "up", "registered", 2)
    zone.call("POST", "/internal/nodes", RegisterNode(url=second), NodeInfo)
    with pytest.raises(InternalCallError) as duplicate:
        zone.call("POST", "/internal/nodes", RegisterNode(url=first))
    assert duplicate.value.status == 409
    assert zone.run_one(SMALL) == "node-1"

    gone = zone.call("DELETE", "/internal/nodes/node-1", response=NodeInfo)
    assert gone.url == first
    assert [n.name for n in zone.nodes().nodes] == ["node-2"]
    assert zone.run_one(SMALL) == "node-2"
    with pytest.raises(InternalCallError) as missing:
        zone.call("DELETE", "/internal/nodes/node-1")
    assert missing.value.status == 404
    # Internal routes refuse callers that do not sign with the cloud secret.
    assert httpx.get(f"{zone.cc.url}/internal/nodes").status_code == 403


def test_a_killed_nc_goes_down_and_comes_back_with_its_instances(zone_factory):
    zone, nc = zone_factory("ROUNDROBIN", own_nc=True)
    result = zone.run(SMALL, count=3)
    ids = {p.instance_id: p.node for p in result.placed}
    wait_for(lambda: {i.instance_id: i.state for i in zone.instances().instances}
             == dict.fromkeys(ids, "running"), 20, "three running instances")

    nc.kill()
    zone.wait_states(dict.fromkeys(zone.node_names, "down"))
    described = {i.instance_id: i for i in zone.instances().instances}
    assert set(described) == set(ids)
    for instance in described.values():
        assert instance.node_state == "down"
        assert instance.reason is not None and "is down" in instance.reason.message
    # Nothing can be placed on a zone whose nodes are down; the instances cannot be reached.
    assert zone.refused(SMALL)["code"] == "InsufficientInstanceCapacity"
    with pytest.raises(InternalCallError) as unreachable:
        zone.call("POST", f"/internal/instances/{next(iter(ids))}/terminate")
    assert unreachable.value.status == 503

    nc.start()
    zone.wait_states(dict.fromkeys(zone.node_names, "up"))

    def back() -> bool:
        now = {i.instance_id: i for i in zone.instances().instances}
        return set(now) == set(ids) and all(
            now[i].state == "running" and now[i].node_id == ids[i] and now[i].node_state == "up"
            for i in ids)

    wait_for(back, 30, "the instances to be described as running on their nodes again")
