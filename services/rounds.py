"""A background job done in rounds until told to stop, each round a blocking function run in
a thread off the event loop (the CLC's reconcile round, its volume settle pass)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable


async def in_rounds(stop: asyncio.Event, one_round: Callable[[], object], interval: float,
                    what: str, log: logging.Logger) -> None:
    """`one_round` every `interval` seconds until `stop` is set; a round that raises is
    logged (as `what` failed) and the next one comes all the same."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(one_round)
        except Exception:  # noqa: BLE001 - one bad round must not end the loop; it is logged
            log.exception("%s failed", what)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
