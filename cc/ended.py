"""Instances that ended, as the CC keeps them after their NC has forgotten them: an NC forgets
a terminated instance soon after the CC has seen it end (nc/process.py), but the CLC must hear
of the end before the zone stops listing it, or its reconcile round would find the instance
missing and report it lost. So the registry keeps such an instance, terminated, until the
feed's mark (`delivered`: the moment before which every change the CC learned has reached the
CLC) has passed the moment the CC learned of the end; then it goes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from services.clock import KEEP_TERMINATED
from services.messages.node import InstanceReport

# Whatever the CLC has heard, an ended instance is kept no longer than EC2 shows it.
KEPT_AT_MOST = KEEP_TERMINATED.total_seconds()


class EndedInstances:
    def __init__(self) -> None:
        self._ended: dict[str, float] = {}        # instance id -> when (monotonic) the CC learned it ended
        self._retained: dict[str, str] = {}       # instance id -> node URL, of those its NC forgot
        self.delivered: Callable[[], float] = lambda: 0.0

    def learned(self, url: str, reports: Iterable[InstanceReport], where: Callable[[str], str | None]) -> None:
        """Reports the zone just took from the node at `url`."""
        now = time.monotonic()
        for report in reports:
            if report.state == "terminated":
                self._ended.setdefault(report.instance_id, now)
            elif report.instance_id in self._ended and where(report.instance_id) == url:
                del self._ended[report.instance_id]     # started again (EBS-backed)

    def undelivered(self, instance_id: str, now: float) -> bool:
        # An end learned before this CC started (loaded from its database) counts as learned
        # at time 0: delivered by the first describe or push after the start.
        ended = self._ended.get(instance_id, 0.0)
        return ended >= self.delivered() and now - ended < KEPT_AT_MOST

    def retain(self, url: str, forgotten: Iterable[str], before: dict[str, InstanceReport],
               after: dict[str, InstanceReport]) -> None:
        """Of the instances the NC no longer lists (`forgotten`, as the node had them
        `before`), put back into `after` those that ended and the CLC has not heard of."""
        now = time.monotonic()
        for iid in forgotten:
            report = before.get(iid)
            if report is not None and report.state == "terminated" and self.undelivered(iid, now):
                after[iid] = report
                self._retained[iid] = url

    def removed(self, url: str, instance_id: str, located: bool) -> None:
        """The instance left the node's list (`located`: it is still listed elsewhere)."""
        if not located:
            self._ended.pop(instance_id, None)
        if self._retained.get(instance_id) == url:
            del self._retained[instance_id]

    def delivered_now(self) -> dict[str, list[str]]:
        """Retained instances whose end the CLC has heard of since, by node URL: to drop."""
        now = time.monotonic()
        done: dict[str, list[str]] = {}
        for iid, url in self._retained.items():
            if not self.undelivered(iid, now):
                done.setdefault(url, []).append(iid)
        return done
