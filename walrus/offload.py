"""Blocking work leaves the event loop through here (the rule is in walrus/app.py).

A request makes one hop (a body makes a few), so the hop itself is on every request's path:
a job is put on one queue, a worker thread runs it and hands the result back with one
`call_soon_threadsafe`. concurrent.futures' executor does the same through two futures and
their callbacks (plus asyncio's wrapper future and a shield): measured in a loop of empty
hops, 100-145 µs a hop against 36-55 µs here, and 20-34 µs of CPU against 8-20."""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

# Worker threads for Walrus's blocking work; its database keeps as many connections open, so
# no request waits for one or opens its own.
THREADS = 32

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _Job:
    __slots__ = ("loop", "future", "context", "fn", "args", "settled")

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.context = contextvars.copy_context()
        self.fn = fn
        self.args = args
        self.settled = False

    def settle(self, result: Any, error: BaseException | None) -> None:
        """On the loop: the call has ended (`future` may be a new one if the caller was
        cancelled meanwhile; see off_loop)."""
        self.settled = True
        if self.future.done():
            return
        if error is None:
            self.future.set_result(result)
        else:
            self.future.set_exception(error)


class _Workers:
    """Threads started as needed, up to THREADS, each taking the next job off one queue."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # that worker is taken: the next submit counts without it
                start = False
            else:
                start = self._started < self._limit
                self._started += start
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._serve, name=f"walrus-worker-{self._started}",
                             daemon=True).start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                result, error = job.context.run(job.fn, *job.args), None
            except BaseException as exc:  # handed to the caller, which raises it
                result, error = None, exc
            with self._lock:
                self._idle += 1
            try:
                job.loop.call_soon_threadsafe(job.settle, result, error)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass
            del job, result, error


_workers = _Workers(THREADS)


async def off_loop(fn: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    """`fn(*args)` in a worker thread; the request's context (its request id) goes with it.

    A cancelled caller still waits for the call to end: work half done in a thread (a blob
    half written) must finish or clean up before anything else may touch what it holds."""
    job = _Job(asyncio.get_running_loop(), fn, args)
    _workers.submit(job)
    try:
        return await job.future  # type: ignore[no-any-return]
    except asyncio.CancelledError:
        if not job.settled:
            job.future = job.loop.create_future()
            await asyncio.wait([job.future])
        raise
