"""The push half of issue 12's contract (services/messages/node.py): once a CC has subscribed
(DescribeNodes.subscribe on its poll), every state change of an instance on any node of this
process is pushed to it as NodeEvents, so the CC learns of `running` in milliseconds instead
of at its next poll.

One pusher per process, one thread: a change is queued (the latest report per instance wins)
and the thread wakes; when no push is in flight it sends at once, and what changes during a
push goes out together in the next. Queuing never blocks and never calls out, so the instance
manager may queue under its lock and a launch never waits for the CC. A failed push is logged
and dropped: the CC's next poll (level-triggered) repairs whatever it missed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from services.internal import InternalCallError, InternalClient
from services.messages.cluster import CC_NODE_EVENTS_ROUTE
from services.messages.node import InstanceReport, NodeEvent, NodeEvents, NodeResources, Subscription

log = logging.getLogger(__name__)
PUSH_TIMEOUT = 10.0


class EventPusher:
    def __init__(self, secret: str, resources_of: Callable[[str], NodeResources], *,
                 timeout: float = PUSH_TIMEOUT) -> None:
        self._secret = secret
        self._resources_of = resources_of       # a node's figures after the change, by prefix
        self._timeout = timeout
        self._wake = threading.Condition()
        self._subscription: Subscription | None = None
        self._client: InternalClient | None = None
        self._retired: list[InternalClient] = []
        self._queued: dict[str, dict[str, InstanceReport]] = {}     # prefix -> instance id -> latest
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.pushes = 0          # how many NodeEvents were sent (successful or not), for tests

    @property
    def subscription(self) -> Subscription | None:
        with self._wake:
            return self._subscription

    def subscribe(self, subscription: Subscription) -> None:
        """Remember where to push (the CC repeats this on every poll; the latest wins)."""
        with self._wake:
            if self._stopping:
                return
            old, self._subscription = self._subscription, subscription
            if old is None or old.url != subscription.url:
                if self._client is not None:
                    self._retired.append(self._client)    # the push in flight may still use it
                self._client = InternalClient(subscription.url, self._secret, timeout=self._timeout)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nc-events", daemon=True)
                self._thread.start()

    def changed(self, prefix: str, report: InstanceReport) -> None:
        """Queue one instance's new state; returns at once. Without a subscriber it is
        dropped: whoever subscribes first polls, and the poll has it."""
        with self._wake:
            if self._subscription is None or self._stopping:
                return
            self._queued.setdefault(prefix, {})[report.instance_id] = report
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queued and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                batch, self._queued = self._queued, {}
                subscription, client = self._subscription, self._client
            assert subscription is not None and client is not None
            self._push(subscription, client, batch)

    def _push(self, subscription: Subscription, client: InternalClient,
              batch: dict[str, dict[str, InstanceReport]]) -> None:
        events = NodeEvents(key=subscription.key, events=[
            NodeEvent(prefix=prefix, resources=self._resources_of(prefix), instances=list(reports.values()))
            for prefix, reports in batch.items()])
        self.pushes += 1
        try:
            client.call("POST", CC_NODE_EVENTS_ROUTE, events)
        except (httpx.HTTPError, InternalCallError) as exc:
            count = sum(len(reports) for reports in batch.values())
            log.warning("push of %d instance change(s) to %s failed (its next poll repairs it): %s",
                        count, subscription.url, exc)

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            thread, client = self._thread, self._client
        if thread is not None:
            thread.join(timeout=self._timeout + 5)
        for old in [client, *self._retired]:
            if old is not None:
                old.close()
