"""Blocking work leaves the event loop through here (the rule is in walrus/app.py)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar, TypeVarTuple, Unpack

# Worker threads for Walrus's blocking work; its database keeps as many connections open, so
# no request waits for one or opens its own.
THREADS = 32

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# A plain executor rather than anyio.to_thread: measured, anyio's limiter and per-call
# bookkeeping cost more on the event loop than the SQLite read of a small GET.
_workers = ThreadPoolExecutor(THREADS, thread_name_prefix="walrus-worker")


async def off_loop(fn: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    """`fn(*args)` in a worker thread; the request's context (its request id) goes with it.

    A cancelled caller still waits for the call to end: work half done in a thread (a blob
    half written) must finish or clean up before anything else may touch what it holds."""
    call = partial(contextvars.copy_context().run, fn, *args)
    future = asyncio.get_running_loop().run_in_executor(_workers, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise
