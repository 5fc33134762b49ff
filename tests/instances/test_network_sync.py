"""NetworkSync (clc/network_sync.py) skips an intent the CC already took on a mere change, and
always sends on a reconcile round's repair mark or after a failed send."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from clc.models.instances import Instance, InstanceGroup
from clc.network_sync import NetworkSync
from clc.zones_client import ZoneError
from services.messages.network import NetworkIntent
from tests.instances.conftest import make_state


class Cc:
    """The zone's CC as NetworkSync sees it: what it was sent, and a way to make it refuse."""

    def __init__(self) -> None:
        self.sent: list[NetworkIntent] = []
        self.refuse = False
        self.calls = threading.Semaphore(0)

    def update_network(self, zone: str, intent: NetworkIntent) -> None:
        try:
            if self.refuse:
                raise ZoneError("Unavailable", "refused for the test", 503)
            self.sent.append(intent)
        finally:
            self.calls.release()


def _next_call(cc: Cc) -> None:
    assert cc.calls.acquire(timeout=60), "the worker never called the CC"


def _quiet(cc: Cc, sync: NetworkSync, zone: str) -> None:
    """Wait until the worker has handled every mark (it clears the event when it wakes)."""
    state = sync._state[zone]
    deadline = time.monotonic() + 60
    while state.wake.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)   # the mark it took may still be in hand; a call would release `calls`


def test_an_unchanged_intent_is_sent_only_on_repair_or_after_a_failure(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    zone = state.config.zones[0]
    cc = Cc()
    sync = NetworkSync(state.config, state.db, cc)  # type: ignore[arg-type]
    try:
        sync.changed(zone)
        _next_call(cc)
        assert len(cc.sent) == 1 and cc.sent[0].instances == []

        sync.changed(zone)            # nothing the network holds changed: no call
        _quiet(cc, sync, zone)
        assert not cc.calls.acquire(timeout=0.5) and len(cc.sent) == 1

        sync.changed(zone, repair=True)   # the reconcile round's mark always sends
        _next_call(cc)
        assert len(cc.sent) == 2 and cc.sent[1] == cc.sent[0]

        with state.db.session() as session:   # a new live instance changes the intent
            session.add(Instance(
                id="i-0000abcd", reservation_id="r-0000abcd", account_id=state.account_id,
                image_id="emi-12345678", instance_type="m1.small", zone=zone, launch_index=0,
                user_data_b64="", state="pending", desired_state="running",
                state_transition_reason="", mac="d0:0d:00:00:ab:cd", private_ip="172.31.0.2",
                public_ip=None, vlan=10))
            session.add(InstanceGroup(instance_id="i-0000abcd", group_id="sg-00000001",
                                      group_name="default"))
        cc.refuse = True
        sync.changed(zone)
        _next_call(cc)                # refused: what the CC holds is unknown now
        cc.refuse = False
        sync.changed(zone)            # so the same intent goes again on a mere change
        _next_call(cc)
        assert [i.instance_id for i in cc.sent[-1].instances] == ["i-0000abcd"]
    finally:
        sync.stop()
        state.db.engine.dispose()
