"""Background work of the SC (snapshot uploads, restores), off the event loop and off the
request: a small thread pool, a stop flag the work checks between parts, and per-volume locks
so that a freeze, a grow, an export and a delete of one volume never interleave."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("sc.jobs")


class Jobs:
    def __init__(self, workers: int = 2) -> None:
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sc-job")
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, work: Callable[[], None]) -> None:
        """Run `work` once for `key` (a snapshot or volume id); a key already queued or running
        is not queued again."""
        with self._lock:
            current = self._running.get(key)
            if current is not None and not current.done():
                return
            # The caller's context goes along, so the work's trace steps land in the trace of
            # the request that started it.
            context = contextvars.copy_context()
            self._running[key] = self._pool.submit(context.run, self._guarded, key, work)

    def _guarded(self, key: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # the work records its own failure; this is the last resort
            log.exception("background job %s failed", key)

    def shutdown(self) -> None:
        self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks[key]
