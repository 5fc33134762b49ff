"""The CLC's network worker survives a pass that fails for something other than the CC (found
by benchmarks/load_mixed.py: under load the database pool timed out, the worker thread died,
and no network change of the zone was sent again until the next reconcile round)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

import clc.network_sync as network_sync
from clc.network_sync import NetworkSync
from services.config import load_config
from tests.support.waiting import wait_for


class FlakyDatabase:
    """Its first session cannot be had (the pool is exhausted); later ones can."""

    def __init__(self) -> None:
        self.asked = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        self.asked += 1
        if self.asked == 1:
            raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")
        yield None


class Zones:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def update_network(self, zone: str, intent: Any) -> None:
        with self.lock:
            self.sent.append(zone)


def test_a_failed_pass_does_not_end_the_worker(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network_sync, "intent_for", lambda session, config, zone: {"zone": zone})
    config = load_config(EUCASIM_HOME=tmp_path, CLOUD_SECRET="s")
    zone = config.zones[0]
    zones = Zones()
    sync = NetworkSync(config, FlakyDatabase(), zones)  # type: ignore[arg-type]
    try:
        sync.changed(zone)
        db = sync._db
        wait_for(lambda: db.asked >= 1, 10, "the first pass")  # type: ignore[attr-defined]
        wait_for(lambda: not sync._state[zone].wake.is_set(), 10, "the first pass taken")
        sync.changed(zone)
        wait_for(lambda: zones.sent == [zone], 10, "the next change sent by the same worker")
    finally:
        sync.stop()


class Database:
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield None


def test_a_burst_of_changes_is_read_and_sent_once_not_once_each(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client launching one instance a call marks the zone every few ms; each mark used to
    cost a whole intent read and a CC call (a quarter of the CLC's CPU under one client)."""
    reads = iter(range(1000))
    monkeypatch.setattr(network_sync, "intent_for", lambda session, config, zone: {"version": next(reads)})
    config = load_config(EUCASIM_HOME=tmp_path, CLOUD_SECRET="s")
    zone = config.zones[0]
    zones = Zones()
    sync = NetworkSync(config, Database(), zones)  # type: ignore[arg-type]
    try:
        for _ in range(10):
            sync.changed(zone)
            threading.Event().wait(0.002)
        wait_for(lambda: len(zones.sent) >= 1, 10, "the burst's intent sent")
        threading.Event().wait(network_sync.COALESCE_SECONDS * 4)
        assert 1 <= len(zones.sent) <= 4, zones.sent
        before = len(zones.sent)
        sync.changed(zone)
        wait_for(lambda: len(zones.sent) == before + 1, 10, "a later change sent too")
    finally:
        sync.stop()
