"""The CLC's view of a zone's capacity and its holds: admission is exact against free figures
minus holds, a placed hold waits for the view that counts it, a refused one is released, and a
CC that restarted (its versions went down) is believed in a whole report but not in a push."""

from __future__ import annotations

import pytest

from clc.zone_view import NoView, ZoneView, fits
from services.errors import EC2Error
from services.messages.cluster import NodeCapacity, ZoneCapacity
from services.messages.node import Resources, VmType

SMALL = VmType(name="m1.small", cpu=1, memory_mb=256, disk_gb=5)
BIG = VmType(name="c1.xlarge", cpu=4, memory_mb=2048, disk_gb=20)


def _capacity(version: int, *cores: int, state: str = "up") -> ZoneCapacity:
    return ZoneCapacity(version=version, nodes=[
        NodeCapacity(name=f"node-{n}", state=state,  # type: ignore[arg-type]
                     free=Resources(cores=c, memory_mb=8192, disk_gb=500),
                     max=Resources(cores=8, memory_mb=8192, disk_gb=500))
        for n, c in enumerate(cores, start=1)])


def _view(version: int, *cores: int) -> ZoneView:
    view = ZoneView("zone-1")
    view.arrived(_capacity(version, *cores), whole_report=True)
    return view


def test_a_fresh_view_knows_nothing():
    with pytest.raises(NoView):
        ZoneView("zone-1").admit("r-1", SMALL, 1, 1)


def test_min_count_is_exact_and_max_count_takes_what_fits():
    view = _view(1, 2, 1)
    with pytest.raises(EC2Error) as refused:
        view.admit("r-1", SMALL, 4, 4)
    assert refused.value.code == "InsufficientInstanceCapacity"
    assert view.holds() == 0
    assert view.admit("r-2", SMALL, 1, 5) == 3
    with pytest.raises(EC2Error):
        view.admit("r-3", SMALL, 1, 1)


def test_a_type_larger_than_any_node_never_fits():
    view = _view(1, 3, 3)
    with pytest.raises(EC2Error) as refused:
        view.admit("r-1", BIG, 1, 1)
    assert "only 0 fit" in refused.value.message


def test_a_placed_hold_stays_until_a_view_counts_it():
    view = _view(1, 2)
    assert view.admit("r-1", SMALL, 2, 2) == 2
    view.placed("r-1", {"node-1": 2}, version=2)
    assert view.room_for(SMALL) == 0           # the view of version 1 does not count them yet
    view.arrived(_capacity(2, 0), whole_report=False)
    assert view.holds() == 0 and view.room_for(SMALL) == 0
    view.arrived(_capacity(3, 2), whole_report=False)  # they ended
    assert view.room_for(SMALL) == 2


def test_a_placement_the_view_already_counts_drops_its_hold_at_once():
    view = _view(1, 2)
    view.admit("r-1", SMALL, 1, 1)
    view.arrived(_capacity(2, 1), whole_report=False)  # the push overtook the CC's answer
    view.placed("r-1", {"node-1": 1}, version=2)
    assert view.holds() == 0 and view.room_for(SMALL) == 1


def test_a_refused_launch_releases_its_hold():
    view = _view(1, 1)
    view.admit("r-1", SMALL, 1, 1)
    assert view.room_for(SMALL) == 0
    view.release("r-1")
    assert view.room_for(SMALL) == 1


def test_an_older_push_is_ignored_but_a_restarted_cc_is_believed():
    view = _view(5, 2)
    view.admit("r-1", SMALL, 1, 1)
    view.placed("r-1", {"node-1": 1}, version=6)
    assert view.arrived(_capacity(4, 0), whole_report=False) is False
    assert view.room_for(SMALL) == 1
    # Versions went down in a whole report: the CC restarted, its old placements mean nothing.
    assert view.arrived(_capacity(1, 2), whole_report=True) is True
    assert view.holds() == 0 and view.room_for(SMALL) == 2


def test_a_down_node_offers_nothing_and_an_asleep_one_can_be_woken():
    down = ZoneView("zone-1")
    down.arrived(_capacity(1, 4, state="down"), whole_report=True)
    assert down.room_for(SMALL) == 0
    asleep = ZoneView("zone-1")
    asleep.arrived(_capacity(1, 4, state="asleep"), whole_report=True)
    assert asleep.room_for(SMALL) == 4


def test_fits_counts_the_scarcest_resource():
    need = SMALL.needs()  # 1 core, 256 MB, 5 GB + 1 GB swap
    assert fits(Resources(cores=10, memory_mb=512, disk_gb=100), need) == 2
    assert fits(Resources(cores=-1, memory_mb=512, disk_gb=100), need) == 0


def _delta(version: int, base: int, changed: dict[str, int], removed: list[str] | None = None) -> ZoneCapacity:
    return ZoneCapacity(version=version, base=base, removed=removed or [], nodes=[
        NodeCapacity(name=name, state="up", free=Resources(cores=c, memory_mb=8192, disk_gb=500),
                     max=Resources(cores=8, memory_mb=8192, disk_gb=500))
        for name, c in changed.items()])


def test_a_pushed_delta_on_the_view_held_changes_only_its_nodes():
    view = _view(1, 2, 2, 2)
    assert view.arrived(_delta(2, 1, {"node-2": 0}, removed=["node-3"]), whole_report=False) is True
    assert view.capacity is not None and view.capacity.version == 2
    assert [(n.name, n.free.cores) for n in view.capacity.nodes] == [("node-1", 2), ("node-2", 0)]
    assert view.room_for(SMALL) == 2


def test_a_delta_on_another_view_is_refused_and_changes_nothing():
    view = _view(3, 2, 2)
    assert view.arrived(_delta(5, 4, {"node-1": 0}), whole_report=False) is False
    assert view.capacity is not None and view.capacity.version == 3
    assert view.room_for(SMALL) == 4
