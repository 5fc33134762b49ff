"""What the CC pushes upstream: the zone's instance changes and its capacity view, to the CLC
that subscribed (DescribeZone.subscribe), the moment the CC learns of them.

Batching: when no push is in flight a change goes at once; what arrives while one is in flight
is coalesced into the next. A failed push is logged and dropped: the CLC's reconcile round
describes the whole zone again and re-subscribes, which repairs anything a lost push missed.
No lock is held across the HTTP call; everything here runs on the CC's event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from services.internal import AsyncInternalClient, InternalCallError
from services.messages.cluster import (CLC_ZONE_EVENTS_ROUTE, ClusterInstance, NodeCapacity,
                                       ZoneCapacity, ZoneEvents, ZoneEventsAnswer)
from services.messages.node import Subscription

log = logging.getLogger("eucasim.cc.feed")


class Coalescer:
    """Runs `action` whenever kicked: at once when idle; kicks during a run make exactly one
    more run after it. The loop outlives a failing action (logged with its traceback)."""

    def __init__(self, name: str, action: Callable[[], Awaitable[None]], pause: float = 0.0) -> None:
        self._name = name
        self._action = action
        # Seconds to wait after a run before the next: more coalescing, fewer runs.
        self._pause = pause
        self._kicked = asyncio.Event()
        # Runs begun and ended, so a caller can wait for the run that takes its change.
        self._begun = 0
        self._ended = 0
        self._run_ended = asyncio.Condition()

    def kick(self) -> None:
        self._kicked.set()

    async def flush(self, timeout: float) -> bool:
        """Kick, and wait (at most `timeout` seconds) until a run begun after this call has
        ended: whatever was changed before the call has then been acted on. A run under way
        now may have begun before the change, so it is the next one that counts. False when
        the wait timed out (the change still goes with a later run)."""
        wanted = self._begun + 1
        self.kick()
        async with self._run_ended:
            try:
                await asyncio.wait_for(self._run_ended.wait_for(lambda: self._ended >= wanted), timeout)
            except TimeoutError:
                return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                kicked = asyncio.ensure_future(self._kicked.wait())
                await asyncio.wait({kicked, stopping}, return_when=asyncio.FIRST_COMPLETED)
                kicked.cancel()
                if self._kicked.is_set():
                    await self.run_once()
                    if self._pause:
                        await asyncio.wait({stopping}, timeout=self._pause)
        finally:
            stopping.cancel()

    async def run_once(self) -> None:
        self._kicked.clear()
        self._begun += 1
        try:
            await self._action()
        except Exception:  # noqa: BLE001 - a bug in one run must not end the loop; it is logged
            log.exception("%s failed", self._name)
        finally:
            self._ended += 1
            async with self._run_ended:
                self._run_ended.notify_all()


class ZoneFeed:
    def __init__(self, zone: str, secret: str, capacity: Callable[[], dict[str, NodeCapacity]],
                 entry: Callable[[str], NodeCapacity | None] | None = None, timeout: float = 10.0) -> None:
        self.zone = zone
        self.version = 0
        self.subscription: Subscription | None = None
        self._secret = secret
        self._capacity = capacity       # every node's entry, by URL, in registration order
        self._entry = entry             # one node's entry (None: gone); None: whole views only
        self._timeout = timeout
        self._client: AsyncInternalClient | None = None
        self._instances: dict[str, ClusterInstance] = {}
        self._capacity_changed = False
        self.pusher = Coalescer("push to the CLC", self.push)
        self.pushes = 0
        # Monotonic time before which every instance change this CC learned has reached the
        # CLC (a describe it answered, or pushes none of which failed since): the registry
        # forgets ended instances only once they are delivered.
        self.delivered_until = 0.0
        self._gap = False           # a push failed since the last describe
        # The capacity view the subscriber holds (entries by node URL) and its version, and
        # the nodes whose entry changed since, so a push carries only those; None: unknown,
        # send it whole. Only to a CLC that said it takes deltas (its answer has
        # capacity_stale). `_views` counts whole views described, so a push answered after
        # a describe does not overwrite what the describe gave.
        self._held: dict[str, NodeCapacity] | None = None
        self._held_version = 0
        self._dirty: set[str] = set()
        self._deltas = False
        self._views = 0

    # -- what the zone tells it -----------------------------------------------------------------

    def instances_changed(self, items: list[ClusterInstance]) -> None:
        if self.subscription is None:
            return  # nobody to tell; a CLC that subscribes describes the whole zone first
        for item in items:
            self._instances[item.instance_id] = item
        self.pusher.kick()

    def capacity_changed(self, url: str | None = None) -> int:
        """The capacity view changed (the entry of the node at `url`; None: which is not
        known, so the next push is whole): a new version. Returns it."""
        self.version += 1
        self._capacity_changed = True
        if url is None:
            self._held = None
        else:
            self._dirty.add(url)
        if self.subscription is not None:
            self.pusher.kick()
        return self.version

    def capacity_view(self) -> ZoneCapacity:
        return ZoneCapacity(version=self.version, nodes=list(self._capacity().values()))

    def described(self) -> ZoneCapacity:
        """The whole view for a describe by the subscriber: what it holds from now on."""
        entries = self._capacity()
        self._held, self._held_version = entries, self.version
        self._dirty = set()
        self._views += 1
        return ZoneCapacity(version=self.version, nodes=list(entries.values()))

    def _capacity_push(self) -> tuple[ZoneCapacity, dict[str, NodeCapacity | None]]:
        """The view to push, and what it changes in the view the subscriber holds once taken
        (entries by URL, None for a node gone). A delta (to a CLC that takes them, when the
        view it holds is known) looks only at the nodes changed since: at twenty thousand
        nodes a placement changes a few, and a whole view is megabytes."""
        held, dirty = self._held, self._dirty
        self._dirty = set()
        if held is None or not self._deltas or self._entry is None:
            entries = self._capacity()
            return ZoneCapacity(version=self.version, nodes=list(entries.values())), dict(entries)
        updates: dict[str, NodeCapacity | None] = {}
        changed: list[NodeCapacity] = []
        removed: list[str] = []
        for url in dirty:
            entry, before = self._entry(url), held.get(url)
            if entry is before:
                continue
            updates[url] = entry
            if before is not None and (entry is None or entry.name != before.name):
                removed.append(before.name)
            if entry is not None:
                changed.append(entry)
        return ZoneCapacity(version=self.version, nodes=changed, base=self._held_version,
                            removed=removed), updates

    def _taken(self, capacity: ZoneCapacity, updates: dict[str, NodeCapacity | None]) -> None:
        """The subscriber now holds `capacity`."""
        if capacity.base is None:
            self._held = {url: entry for url, entry in updates.items() if entry is not None}
        else:
            assert self._held is not None
            for url, entry in updates.items():
                if entry is None:
                    self._held.pop(url, None)
                else:
                    self._held[url] = entry
        self._held_version = capacity.version

    def subscribe(self, subscription: Subscription) -> None:
        """A describe with a subscription: what the subscriber has not seen it is describing
        now (the answer is built before the loop moves on), so start afresh."""
        self.subscription = subscription
        self._instances = {}
        self._capacity_changed = False
        self.delivered_until = time.monotonic()
        self._gap = False

    # -- pushing ----------------------------------------------------------------------------------

    async def push(self) -> None:
        subscription = self.subscription
        if subscription is None or (not self._instances and not self._capacity_changed):
            return
        taken = time.monotonic()
        views = self._views
        capacity, updates = self._capacity_push() if self._capacity_changed else (None, {})
        events = ZoneEvents(key=subscription.key, zone=self.zone,
                            instances=list(self._instances.values()), capacity=capacity)
        self._instances = {}
        self._capacity_changed = False
        if self._client is None or self._client.base_url != subscription.url.rstrip("/"):
            if self._client is not None:
                await self._client.aclose()
            self._client = AsyncInternalClient(subscription.url, self._secret, timeout=self._timeout)
        client = self._client
        try:
            answer = ZoneEventsAnswer.model_validate(
                await client.call("POST", CLC_ZONE_EVENTS_ROUTE, events) or {})
            self.pushes += 1
            if not self._gap and self.subscription is subscription:
                self.delivered_until = max(self.delivered_until, taken)
            if capacity is not None and views == self._views:
                self._deltas = answer.capacity_stale is not None
                if answer.capacity_stale or (capacity.base is not None and self._held is None):
                    self._held = None
                else:
                    self._taken(capacity, updates)
        except (httpx.HTTPError, InternalCallError) as exc:
            self._gap = True
            if capacity is not None and views == self._views:
                self._held = None
            log.warning("push of %d instance change(s) to %s failed (the CLC's reconcile repairs "
                        "it): %s", len(events.instances), subscription.url, exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
