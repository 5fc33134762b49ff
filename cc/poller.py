"""Every NC_POLLING_FREQUENCY seconds, ask every NC process (all at once) for every node it
serves, in one describe call each, and feed the answers to the registry. Pushes from the NCs
carry changes as they happen; this round is the safety net that repairs whatever a lost push
missed, and each describe renews this CC's subscription to the process's pushes.

A round sends each process the cursor of its last answer and gets only what changed since (a
delta: a zone of 20,000 quiet nodes costs a few bytes, not every node and instance); nodes
left out of a delta answered and are unchanged. The whole answer comes back when the process
does not know the cursor (it restarted) and every FULL_EVERY rounds, the level-triggered
repair of anything a delta could miss; nodes the CC missed, never heard of, or could not
apply (a push came meanwhile) are asked whole in the next delta.

An NC process without the describe route (404) is asked node by node, as before it had one.
Only a failed call (the transport, or an error status) counts as a missed poll; anything else
is a bug, logged with its traceback, and does not make a node look down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from cc.ncclient import NodeClients
from cc.node_urls import split_url
from cc.power import PowerManager
from cc.registry import NodeRegistry
from cc.reservations import Reservations
from cc.tracked_node import TrackedNode
from services.internal import InternalCallError
from services.clock import utcnow
from services.messages.node import InstanceReport, NodeProcessReport, NodeResources, NodeStatus, Subscription
from services.tracing import TraceRecorder

log = logging.getLogger("eucasim.cc.poller")
POLL_TRACE = "cc-poller"
# What a failed call to an NC raises; everything else is a bug on one side or the other.
CALL_FAILED = (httpx.HTTPError, InternalCallError)
# A whole answer every this many rounds, whatever the cursor (3 minutes at the default
# NC_POLLING_FREQUENCY of 6 s): a whole answer of 20,000 nodes and 40,000 instances costs the
# NC process seconds of CPU, and a delta misses nothing the cursor covers.
FULL_EVERY = 30


@dataclass
class _Cursor:
    """Where the CC stands with one NC process: its last cursor, rounds since a whole answer,
    and nodes (prefixes) to ask whole next time."""
    value: str | None = None
    rounds: int = 0
    whole: set[str] = field(default_factory=set)


class Poller:
    def __init__(self, registry: NodeRegistry, clients: NodeClients, reservations: Reservations,
                 power: PowerManager, recorder: TraceRecorder, interval: float,
                 own_url: str | None = None) -> None:
        self._registry = registry
        self._clients = clients
        self._reservations = reservations
        self._power = power
        self._recorder = recorder
        self.interval = interval
        # Set when the interval changes, so a long pause under the old one ends at once.
        self._retimed = asyncio.Event()
        # Where NCs push their events (this CC's base URL); None: do not subscribe.
        self._own_url = own_url
        self._cursors: dict[str, _Cursor] = {}

    def subscription(self, root: str) -> Subscription | None:
        return Subscription(url=self._own_url, key=root) if self._own_url else None

    # -- one NC process ---------------------------------------------------------------------

    async def poll_process(self, root: str, nodes: Sequence[TrackedNode], *, round_: bool = False) -> None:
        """Poll one NC process for `nodes`; `round_`: they are all of its nodes, so its
        answer may be a delta and its cursor is kept."""
        started = time.monotonic()
        cursor = self._cursors.setdefault(root, _Cursor()) if round_ else _Cursor()
        since, whole = self._ask(cursor, nodes)
        try:
            report = await self._clients.describe(root, self.subscription(root), since, sorted(whole))
        except InternalCallError as exc:
            if exc.status == 404:
                # An NC from before the describe route: one call per node.
                await asyncio.gather(*(self.poll_node(n.url) for n in nodes))
                return
            for node in nodes:
                self._missed(node.url, str(exc))
            return
        except httpx.HTTPError as exc:
            for node in nodes:
                self._missed(node.url, str(exc) or type(exc).__name__)
            if round_ and since is None and cursor.value is not None:
                # The periodic whole answer did not come in time (a busy process of thousands
                # of nodes): back to deltas, or every round would ask whole and time out.
                cursor.rounds = 0
            return
        if round_:
            # Forgotten until the answer is applied: a bug half-way gets a whole answer next.
            self._cursors[root] = _Cursor()
        if report.delta:
            retry = self._apply_delta(root, nodes, report, started)
        else:
            retry = self._apply_whole(root, nodes, report, started)
        if round_ and report.cursor is not None:
            self._cursors[root] = _Cursor(value=report.cursor, whole=retry,
                                          rounds=cursor.rounds + 1 if report.delta else 0)

    @staticmethod
    def _ask(cursor: _Cursor, nodes: Sequence[TrackedNode]) -> tuple[str | None, set[str]]:
        """What to send: the cursor (None: a whole answer) and the nodes to ask whole."""
        if cursor.value is None or cursor.rounds + 1 >= FULL_EVERY:
            return None, set()
        whole = set(cursor.whole)
        for node in nodes:
            if node.resources is None or node.missed_polls > 0:
                whole.add(split_url(node.url)[1])
        if len(whole) > len(nodes) // 2:
            return None, set()      # most of them: one whole answer is simpler
        return cursor.value, whole

    def _apply_whole(self, root: str, nodes: Sequence[TrackedNode], report: NodeProcessReport,
                     started: float) -> set[str]:
        """Apply a whole answer; returns the prefixes whose instance lists were not applied
        (a call or push newer than the poll came meanwhile): to ask whole next time."""
        served = {status.prefix.rstrip("/"): status for status in report.nodes}
        retry: set[str] = set()
        for node in nodes:
            prefix = split_url(node.url)[1]
            status = served.get(prefix)
            if status is None:
                self._missed(node.url, f"the NC process at {root} does not serve {prefix or '/'}")
            else:
                if started < node.changed_at:
                    retry.add(prefix)
                self._answered(node.url, status.resources, status.instances, started)
        return retry

    def _apply_delta(self, root: str, nodes: Sequence[TrackedNode], report: NodeProcessReport,
                     started: float) -> set[str]:
        """Apply a delta; returns the prefixes to ask whole next time (news not applied)."""
        served: dict[str, NodeStatus] = {status.prefix.rstrip("/"): status for status in report.nodes}
        absent = {prefix.rstrip("/") for prefix in report.absent}
        retry: set[str] = set()
        seen = utcnow()
        for node in nodes:
            prefix = split_url(node.url)[1]
            status = served.get(prefix)
            if prefix in absent:
                self._missed(node.url, f"the NC process at {root} does not serve {prefix or '/'}")
            elif status is None:
                self._state_changed(node.url, node.name, self._registry.record_alive(node.url, seen))
            elif status.complete:
                if started < node.changed_at:
                    retry.add(prefix)
                self._answered(node.url, status.resources, status.instances, started)
            else:
                before, applied = self._registry.record_delta(node.url, status.resources, status.instances,
                                                              status.gone, started)
                if applied:
                    self._reservations.settle(node.url, [r.instance_id for r in status.instances])
                else:
                    retry.add(prefix)
                self._state_changed(node.url, status.resources.node_id, before)
        return retry

    async def poll_node(self, url: str) -> None:
        """One node by its own routes (an NC process without the describe route)."""
        started = time.monotonic()
        try:
            listing, resources = await asyncio.gather(self._clients.instances(url),
                                                      self._clients.resources(url))
        except CALL_FAILED as exc:
            self._missed(url, str(exc) or type(exc).__name__)
            return
        self._answered(url, resources, listing.instances, started)

    async def poll_now(self, url: str) -> None:
        """Poll the process of one node at once (a node just registered)."""
        node = self._registry.find(url)
        if node is not None:
            await self.poll_process(split_url(node.url)[0], [node])

    def _answered(self, url: str, resources: NodeResources, reports: list[InstanceReport],
                  started: float) -> None:
        before = self._registry.record_answer(url, resources, reports, started)
        node = self._registry.find(url)
        if node is not None:
            self._reservations.settle(url, node.instances)
        self._state_changed(url, resources.node_id, before)

    def _state_changed(self, url: str, name: str, before: str | None) -> None:
        if before is not None:
            node = self._registry.find(url)
            state = node.state if node else "gone"
            log.info("node %s (%s): %s -> %s", name, url, before, state)
            self._recorder.record("decided", f"{name} is {state} (was {before})", request_id=POLL_TRACE)

    def _missed(self, url: str, error: str) -> None:
        before = self._registry.record_miss(url, error)
        if before is not None:
            log.warning("node %s is down: %s", url, error)
            self._recorder.record("decided", f"{url} is down after missed polls: {error}",
                                  request_id=POLL_TRACE)

    # -- rounds -------------------------------------------------------------------------------

    async def poll_once(self) -> None:
        groups = self._registry.by_process()
        outcomes = await asyncio.gather(*(self.poll_process(root, nodes, round_=True)
                                          for root, nodes in groups.items()),
                                        return_exceptions=True)
        for root, outcome in zip(groups, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # Not a missed poll: the answer came and handling it failed. The nodes keep
                # their state; the traceback says where to look.
                log.error("poll of the NC process at %s failed (a bug, not a down node)", root,
                          exc_info=outcome)
        for root in list(self._cursors):
            if root not in groups:      # its last node was deregistered
                del self._cursors[root]
        self._registry.sweep()

    async def run(self, stop: asyncio.Event, after_round: Callable[[], Awaitable[None]] | None = None) -> None:
        while not stop.is_set():
            try:
                await self.poll_once()
                await self._power.tick()
                if after_round is not None:
                    await after_round()
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad round; logged
                log.exception("poll round failed")
            await self._pause(stop)

    def retime(self, interval: float) -> None:
        self.interval = interval
        self._retimed.set()

    async def _pause(self, stop: asyncio.Event) -> None:
        """Wait one interval, or less when stopped or retimed."""
        self._retimed.clear()
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._retimed.wait())}
        _, pending = await asyncio.wait(waits, timeout=self.interval,
                                        return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
