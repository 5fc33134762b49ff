"""Each policy places a sequence of m1.small/c1.xlarge requests where it should, on a real
zone: nodes of 2, 4 and 8 cores served by a real NC process, a real CC process in front."""

from __future__ import annotations

from tests.cc.conftest import restart_cc
from tests.cc.zone import SMALL, XLARGE


def test_greedy_fills_nodes_in_registration_order_and_an_admin_may_name_one(zone_factory):
    zone, _ = zone_factory("GREEDY")
    placed = [zone.run_one(vm) for vm in (SMALL, SMALL, XLARGE, SMALL, XLARGE, SMALL)]
    assert placed == ["node-1", "node-1", "node-2", "node-3", "node-3", "node-3"]
    # node-3 has two cores left: an administrator's c1.xlarge there is refused although the
    # request names the node; an m1.small fits.
    assert zone.refused(XLARGE, target="node-3")["code"] == "InsufficientInstanceCapacity"
    assert zone.refused(SMALL, target="node-9")["code"] == "InvalidNode.NotFound"
    assert [p.node for p in zone.run(SMALL, count=2, target="node-3").placed] == ["node-3"] * 2


def test_round_robin_walks_from_a_pointer_that_survives_a_restart(zone_factory):
    zone, _ = zone_factory("ROUNDROBIN")
    assert [zone.run_one(SMALL), zone.run_one(SMALL)] == ["node-1", "node-2"]
    restart_cc(zone)
    zone.wait_states(dict.fromkeys(zone.node_names, "up"))
    # The pointer was saved after node-2, so node-3 is next; c1.xlarge then fits only on
    # node-3 again, and the walk goes on from node-1.
    placed = [zone.run_one(vm) for vm in (SMALL, XLARGE, SMALL, SMALL)]
    assert placed == ["node-3", "node-3", "node-1", "node-2"]


def test_powersave_packs_awake_nodes_and_wakes_one_only_when_needed(zone_factory):
    zone, _ = zone_factory("POWERSAVE", POWER_IDLETHRESH=0.5)
    zone.wait_states(dict.fromkeys(zone.node_names, "asleep"))
    results = [zone.run(vm) for vm in (SMALL, SMALL, XLARGE, SMALL)]
    assert [r.placed[0].node for r in results] == ["node-1", "node-1", "node-2", "node-3"]
    assert zone.states() == dict.fromkeys(zone.node_names, "up")
    # node-3's one instance goes away: after POWER_IDLETHRESH idle it sleeps again, the busy
    # nodes stay awake.
    zone.call("POST", f"/internal/instances/{results[-1].placed[0].instance_id}/terminate")
    zone.wait_states({"node-1": "up", "node-2": "up", "node-3": "asleep"})
    # node-1 and node-2 are full, so the sleeping node-3 is woken once more.
    assert zone.run_one(SMALL) == "node-3"
