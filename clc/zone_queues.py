"""One worker thread and job queue per zone, started on first use.

Launches, volume attachments and the like call a zone's CC or SC off the request: jobs for one
zone run in the order they were asked (a detach never overtakes its attach), and a zone that
hangs delays only its own queue."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

Job = Callable[[], None]


@dataclass
class _Worker:
    jobs: queue.Queue[Job | None]
    thread: threading.Thread


class ZoneQueues:
    def __init__(self, name: str) -> None:
        self._name = name
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()

    def submit(self, zone: str, job: Job) -> None:
        with self._lock:
            worker = self._workers.get(zone)
            if worker is None:
                jobs: queue.Queue[Job | None] = queue.Queue()
                thread = threading.Thread(target=self._work, args=(zone, jobs), daemon=True,
                                          name=f"clc-{self._name}-{zone}")
                worker = self._workers[zone] = _Worker(jobs, thread)
                thread.start()
        worker.jobs.put(job)

    def _work(self, zone: str, jobs: queue.Queue[Job | None]) -> None:
        while (job := jobs.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - a bug in one job is logged; the zone's queue goes on
                LOG.exception("%s job for zone %s failed", self._name, zone)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs (a zone that hangs is left to its call's timeout) and end the
        workers."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.jobs.put(None)
        for worker in workers:
            worker.thread.join(timeout)
