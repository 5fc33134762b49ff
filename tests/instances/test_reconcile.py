"""The CLC's reconciliation loop against a real CC (served on a free port, no nodes): what
the zone does not report, what stays pending, what the user terminated, what is old enough to
forget — and a zone that does not answer changes nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cc.app import create_app as create_cc
from clc.instances import request_termination
from clc.models.instances import Instance
from clc.reconcile import MISSING_ROUNDS, Reconciler
from clc.zones_client import CcZoneClient
from services.clock import utcnow
from services.config import load_config
from services.messages.node import Subscription
from tests.instances.conftest import ClcState, make_state
from tests.instances.stand_in_cc import StandInCC
from tests.support.servers import refused_port, running


@pytest.fixture
def zone(tmp_path: Path) -> Iterator[ClcState]:
    cc_config = load_config(EUCASIM_HOME=tmp_path / "cc", CLOUD_SECRET="test-secret", NODES="",
                            NC_POLLING_FREQUENCY=0.2)
    with running(create_cc(cc_config)) as url:
        state = make_state(tmp_path / "clc", CC_URL=url, INSTANCE_PENDING_TIMEOUT=60)
        yield state
        state.db.engine.dispose()


def _add(state: ClcState, instance_id: str, status: str, age: timedelta, node: str | None = "node-1") -> None:
    with state.db.session() as session:
        session.add(Instance(id=instance_id, reservation_id="r-00000001", account_id=state.account_id,
                             image_id="emi-00000001", instance_type="m1.small", zone="zone-1",
                             state=status, node=node, launched_at=utcnow() - age))


def _get(state: ClcState, instance_id: str) -> Instance | None:
    with state.db.session() as session:
        return session.get(Instance, instance_id)


def _reconciler(state: ClcState) -> Reconciler:
    return Reconciler(state.config, state.db, CcZoneClient(state.config))


def test_an_instance_stuck_in_pending_fails_with_its_reason(zone: ClcState):
    _add(zone, "i-00000001", "pending", timedelta(minutes=5))
    _add(zone, "i-00000002", "pending", timedelta(seconds=1))
    _reconciler(zone).run_once()
    stuck = _get(zone, "i-00000001")
    assert stuck is not None and stuck.state == "terminated"
    assert stuck.state_reason_code == "Server.InternalError"
    assert "still pending after 60 s" in (stuck.state_reason_message or "")
    fresh = _get(zone, "i-00000002")
    assert fresh is not None and fresh.state == "pending"


def test_a_running_instance_its_zone_stops_reporting_fails_after_some_rounds(zone: ClcState):
    _add(zone, "i-00000003", "running", timedelta(minutes=5))
    reconciler = _reconciler(zone)
    for _ in range(MISSING_ROUNDS - 1):
        reconciler.run_once()
        assert _get(zone, "i-00000003").state == "running"  # type: ignore[union-attr]
    reconciler.run_once()
    lost = _get(zone, "i-00000003")
    assert lost is not None and lost.state == "terminated"
    assert "no longer reports" in (lost.state_reason_message or "")


def test_an_instance_is_not_counted_lost_while_its_cc_has_yet_to_hear_from_a_node(
        tmp_path: Path) -> None:
    # A CC that just started, or whose nodes moved (a restored cloud): until each node answers
    # a poll, what it runs is missing from the report, and that proves nothing lost.
    # The node's NC is busy: it takes the connection and has not answered yet.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        cc_config = load_config(EUCASIM_HOME=tmp_path / "cc", CLOUD_SECRET="test-secret",
                                NODES=f"http://127.0.0.1:{silent.getsockname()[1]}",
                                NC_POLLING_FREQUENCY=600)
        with running(create_cc(cc_config)) as url:
            state = make_state(tmp_path / "clc", CC_URL=url, INSTANCE_PENDING_TIMEOUT=60)
            try:
                _add(state, "i-00000009", "running", timedelta(minutes=5))
                reconciler = _reconciler(state)
                for _ in range(MISSING_ROUNDS + 2):
                    reconciler.run_once()
                assert _get(state, "i-00000009").state == "running"  # type: ignore[union-attr]
            finally:
                silent.close()  # resets the waiting poll, so the CC stops at once
                state.db.engine.dispose()


def test_what_the_user_terminated_ends_terminated_and_repeating_changes_nothing(zone: ClcState):
    _add(zone, "i-00000004", "running", timedelta(minutes=1))
    with zone.db.session() as session:
        row = session.get(Instance, "i-00000004")
        assert row is not None
        assert request_termination(row) == "running" and row.state == "shutting-down"
    reconciler = _reconciler(zone)
    first = reconciler.run_once()
    assert first[0].changed == ["i-00000004"]
    done = _get(zone, "i-00000004")
    assert done is not None and done.state == "terminated"
    assert done.state_reason_code == "Client.UserInitiatedShutdown"
    assert reconciler.run_once()[0].changed == []


def test_terminated_instances_are_forgotten_after_an_hour(zone: ClcState):
    _add(zone, "i-00000005", "terminated", timedelta(hours=3))
    with zone.db.session() as session:
        row = session.get(Instance, "i-00000005")
        assert row is not None
        row.terminated_at = utcnow() - timedelta(hours=2)
    assert _reconciler(zone).run_once()[0].purged == 1
    assert _get(zone, "i-00000005") is None


def test_an_unreachable_zone_changes_nothing(tmp_path: Path):
    with refused_port() as port:
        state = make_state(tmp_path, CC_URL=f"http://127.0.0.1:{port}", INSTANCE_PENDING_TIMEOUT=1)
        _add(state, "i-00000006", "pending", timedelta(minutes=5))
        result = _reconciler(state).run_once()
    assert result[0].reachable is False
    assert _get(state, "i-00000006").state == "pending"  # type: ignore[union-attr]


def test_a_round_subscribes_and_ends_on_the_zone_what_the_clc_ended(tmp_path: Path):
    cc = StandInCC("test-secret")
    with running(cc.app) as url:
        state = make_state(tmp_path, CC_URL=url)
        _add(state, "i-00000007", "terminated", timedelta(minutes=1))
        cc.adopt("i-00000007", "running")  # refused here, yet the CC started it after all
        result = _reconciler(state).run_once()
        assert result[0].terminated_on_zone == ["i-00000007"]
        assert cc.instances["i-00000007"].state == "terminated"
        assert cc.subscriptions["zone-1"] == Subscription(url=state.config.service_url("clc"),
                                                          key="zone-1")
        state.db.engine.dispose()
