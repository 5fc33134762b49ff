"""Keeps each zone's CC told what its network must be (clc/network_intent.py), off the
request: whatever changes addresses, groups' rules or which instances live marks its zone, and
one worker per zone sends the latest whole intent, so a burst of changes is one call and a
slow CC never holds up a user. An intent equal to the last one the CC accepted is not sent
again on a mere change (an instance going pending -> running changes nothing the network
holds, yet used to cost a whole intent's call and the CC's planning); the reconcile round
marks every zone with `repair`, which always sends (level-triggered: a lost call or a CC that
forgot its plan costs one round). The request id of the latest change goes along, so the CC's
rule diff lands in that request's trace."""

from __future__ import annotations

import logging
import threading

from clc.network_intent import intent_for
from clc.zones_client import ZoneClient, ZoneError
from services.config import CloudConfig
from services.db import Database
from services.messages.network import NetworkIntent
from services.tracing import bind_request_id, unbind_request_id

LOG = logging.getLogger(__name__)
# How long a worker woken by a change waits for more before it reads the intent: one launch
# marks its zone twice (admitted, then placed) and a client launching one instance a call marks
# it every few ms, so without the wait each mark cost a whole intent read and a CC call — a
# quarter of the CLC's CPU under one sequential client (py-spy, benchmarks/README.md). Guests
# ask for their address seconds later, so 50 ms is never what they wait for.
COALESCE_SECONDS = 0.05


class _Zone:
    def __init__(self) -> None:
        self.wake = threading.Event()
        self.request_id: str | None = None
        self.repair = False
        self.thread: threading.Thread | None = None
        self.accepted: NetworkIntent | None = None  # the last intent the CC took, by the worker


class NetworkSync:
    def __init__(self, config: CloudConfig, db: Database, zones: ZoneClient) -> None:
        self._config = config
        self._db = db
        self._zones = zones
        self._state = {zone: _Zone() for zone in config.zones}
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def changed(self, zone: str | None = None, request_id: str | None = None, *,
                repair: bool = False) -> None:
        """Mark `zone` (every zone when None) for a new intent; returns at once. `repair`: send
        it even when it equals the last one the CC accepted."""
        for name in [zone] if zone else list(self._state):
            state = self._state.get(name)
            if state is None:
                continue
            if request_id is not None:
                state.request_id = request_id
            if repair:
                state.repair = True
            with self._lock:
                if state.thread is None and not self._stopping.is_set():
                    state.thread = threading.Thread(target=self._work, args=(name, state),
                                                    name=f"clc-network-{name}", daemon=True)
                    state.thread.start()
            state.wake.set()

    def send_now(self, zone: str) -> None:
        """Compute and send the zone's intent in this thread (the reconcile round's way)."""
        with self._db.session() as session:
            intent = intent_for(session, self._config, zone)
        self._zones.update_network(zone, intent)

    def _work(self, zone: str, state: _Zone) -> None:
        while not self._stopping.is_set():
            state.wake.wait()
            if not state.repair:
                self._stopping.wait(COALESCE_SECONDS)
            state.wake.clear()
            if self._stopping.is_set():
                return
            request_id, state.request_id = state.request_id, None
            repair, state.repair = state.repair, False
            token = bind_request_id(request_id) if request_id else None
            try:
                with self._db.session() as session:
                    intent = intent_for(session, self._config, zone)
                if repair or intent != state.accepted:
                    state.accepted = None  # unknown until the CC answers
                    self._zones.update_network(zone, intent)
                    state.accepted = intent
            except ZoneError as exc:  # the CC is down or refused: the next round sends again
                LOG.warning("network of zone %s not sent: %s", zone, exc)
            except Exception:  # noqa: BLE001 - the worker must outlive one bad pass
                # e.g. no database connection within the pool's timeout under load: the thread
                # used to die here, and with `state.thread` still set no change of the zone's
                # network was sent again until the next reconcile round.
                LOG.exception("network of zone %s not sent", zone)
            finally:
                if token is not None:
                    unbind_request_id(token)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        for state in self._state.values():
            state.wake.set()
            if state.thread is not None:
                state.thread.join(timeout)
