"""Freezing a running guest's file systems for a snapshot through the NC's signed internal API
(services/messages/freeze.py), on each hypervisor driver: the test driver has no guest agent
(frozen: false, with the reason), the fake's guest agent freezes and thaws, a second freeze is
refused while one holds, and a freeze nobody thaws is thawed by the node itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from nc.fake_hypervisor import FakeHypervisor
from services.internal import InternalCallError
from services.messages.freeze import (FREEZE_ROUTE, THAW_ROUTE, FreezeFilesystems, FreezeResult,
                                      ThawFilesystems)
from tests.nc.conftest import DRIVERS, Driver, Node, run_request, start_node
from tests.support.waiting import wait_for


def freeze(node: Node, instance_id: str, thaw_after_s: float = 30.0) -> FreezeResult:
    return node.call("POST", FREEZE_ROUTE.format(instance_id=instance_id),  # type: ignore[no-any-return]
                     FreezeFilesystems(volume_id="vol-12345678", thaw_after_s=thaw_after_s), FreezeResult)


def thaw(node: Node, instance_id: str) -> FreezeResult:
    return node.call("POST", THAW_ROUTE.format(instance_id=instance_id),  # type: ignore[no-any-return]
                     ThawFilesystems(volume_id="vol-12345678"), FreezeResult)


def running_instance(node: Node) -> str:
    request = run_request()
    node.run(request)
    node.wait_state(request.instance_id, "running")
    return request.instance_id


def frozen_now(node: Node, instance_id: str) -> int:
    hypervisor = node.runtime.hypervisor
    assert isinstance(hypervisor, FakeHypervisor)
    return hypervisor.frozen(instance_id)


def test_a_guest_freezes_only_where_an_agent_answers(node: Node, driver: Driver) -> None:
    instance_id = running_instance(node)
    answer = freeze(node, instance_id)
    if driver.name != "fake":
        assert not answer.frozen and answer.filesystems == 0
        assert "runs no guest" in (answer.reason or "")
        assert thaw(node, instance_id).filesystems == 0     # nothing frozen, nothing thawed
        return
    assert answer.frozen and answer.filesystems == 3 and frozen_now(node, instance_id) == 3
    with pytest.raises(InternalCallError) as refused:       # one freeze at a time
        freeze(node, instance_id)
    assert refused.value.status == 409 and refused.value.detail["code"] == "IncorrectState"
    thawed = thaw(node, instance_id)
    assert (thawed.frozen, thawed.filesystems) == (False, 3) and frozen_now(node, instance_id) == 0
    assert thaw(node, instance_id).filesystems == 0


def test_a_freeze_nobody_thaws_is_thawed_by_the_node(tmp_path: Path) -> None:
    with start_node(tmp_path / "n1", DRIVERS["fake"]) as node:     # the one with a guest agent
        watchdog_thaws(node)


def watchdog_thaws(node: Node) -> None:
    instance_id = running_instance(node)
    assert freeze(node, instance_id, thaw_after_s=0.5).frozen
    wait_for(lambda: frozen_now(node, instance_id) == 0, 10, "the watchdog's thaw")
    # The late thaw finds nothing frozen: the CLC then knows the freeze did not hold.
    assert thaw(node, instance_id).filesystems == 0


def test_an_unknown_instance_is_not_found(node: Node) -> None:
    with pytest.raises(InternalCallError) as missing:
        freeze(node, "i-00000bad")
    assert missing.value.status == 404 and missing.value.detail["code"] == "InvalidInstanceID.NotFound"
