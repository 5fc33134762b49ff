"""Background work of the SC (snapshot uploads, restores), off the event loop and off the
request: a small thread pool, a stop flag the work checks between parts, and per-volume locks
so that a freeze, a grow, an export and a delete of one volume never interleave."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

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


@dataclass
class _KeyLock:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # holders and waiters


class KeyedLocks:
    """One lock per key (a volume id), kept only while someone holds or waits for it: a lock
    kept for every volume the zone ever made grew the SC's memory with each one."""

    def __init__(self) -> None:
        self._held: dict[str, _KeyLock] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        with self._guard:
            return len(self._held)

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._held.setdefault(key, _KeyLock())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._held[key]
