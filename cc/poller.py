"""Every NC_POLLING_FREQUENCY seconds, ask every node (all at once) for its instances and its
resources; feed the answers to the registry and settle the reservations they cover."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cc.ncclient import NodeClients
from cc.power import PowerManager
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from services.tracing import TraceRecorder

log = logging.getLogger("eucasim.cc.poller")
POLL_TRACE = "cc-poller"


class Poller:
    def __init__(self, registry: NodeRegistry, clients: NodeClients, reservations: Reservations,
                 power: PowerManager, recorder: TraceRecorder, interval: float) -> None:
        self._registry = registry
        self._clients = clients
        self._reservations = reservations
        self._power = power
        self._recorder = recorder
        self.interval = interval

    async def poll_node(self, url: str) -> None:
        started = time.monotonic()
        try:
            listing, resources = await asyncio.gather(self._clients.instances(url),
                                                      self._clients.resources(url))
        except Exception as exc:  # noqa: BLE001 - any failure is a missed poll
            error = str(exc) or type(exc).__name__
            before = self._registry.record_miss(url, error)
            if before is not None:
                log.warning("node %s is down: %s", url, error)
                self._recorder.record("decided", f"{url} is down after missed polls: {error}",
                                      request_id=POLL_TRACE)
            return
        before = self._registry.record_answer(url, resources, listing.instances, started)
        self._reservations.settle(url, started, {r.instance_id for r in listing.instances})
        if before is not None:
            node = self._registry.find(url)
            state = node.state if node else "gone"
            log.info("node %s (%s): %s -> %s", resources.node_id, url, before, state)
            self._recorder.record("decided", f"{resources.node_id} is {state} (was {before})",
                                  request_id=POLL_TRACE)

    async def poll_once(self) -> None:
        await asyncio.gather(*(self.poll_node(n.url) for n in self._registry.nodes()))

    async def run(self, stop: asyncio.Event, after_round: Callable[[], None] = lambda: None) -> None:
        while not stop.is_set():
            try:
                await self.poll_once()
                await self._power.tick()
                after_round()
            except Exception:  # the loop must outlive any one bad round
                log.exception("poll round failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass
