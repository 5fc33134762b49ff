"""Blocking work leaves the event loop through here (the rule is in walrus/app.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio

# Worker threads Walrus's requests use at once (anyio's default limiter); its database keeps as
# many connections open, so no request waits for one or opens its own.
THREADS = 40

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def off_loop(fn: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    """`fn(*args)` in a worker thread; the request's context (its request id) goes with it."""
    return await anyio.to_thread.run_sync(fn, *args)
