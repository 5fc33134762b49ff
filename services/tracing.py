"""Request ids and the teaching trace: every service records, per request id, the steps it
took (received, decided, called, replied) with timings, so one user call can be followed
through CLC → CC → NC."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

REQUEST_ID_HEADER = "x-eucasim-request-id"

_current_request_id: ContextVar[str | None] = ContextVar("eucasim_request_id", default=None)


# A request id is made for every request a service receives: a random prefix drawn once per
# process and a counter from a random start, shaped as a UUID 4. uuid4() reads os.urandom
# each time, a system call on every request.
_ID_PREFIX = str(uuid.uuid4())[:24]
_id_counter = itertools.count(int.from_bytes(os.urandom(6), "big"))


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


def current_request_id() -> str | None:
    return _current_request_id.get()


def bind_request_id(request_id: str) -> Any:
    """Make `request_id` current for this task/thread; returns a token for `unbind`."""
    return _current_request_id.set(request_id)


def unbind_request_id(token: Any) -> None:
    _current_request_id.reset(token)


class TraceStep(BaseModel):
    service: str
    kind: str  # received | decided | called | replied | error
    what: str
    at: float = Field(default_factory=time.time)
    elapsed_ms: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Trace(BaseModel):
    request_id: str
    steps: list[TraceStep]


class _Step(NamedTuple):
    """A step as the recorder keeps it: a plain tuple, a few hundred bytes less than a TraceStep
    (the ring holds thousands of them in every service; the pydantic model is made only for
    the few a reader asks for)."""
    kind: str
    what: str
    at: float
    elapsed_ms: float | None
    detail: dict[str, Any] | None

    def model(self, service: str) -> TraceStep:
        return TraceStep(service=service, kind=self.kind, what=self.what, at=self.at,
                         elapsed_ms=self.elapsed_ms, detail=self.detail or {})


class TraceRecorder:
    """Keeps the steps of the most recent requests in memory (bounded: a teaching aid, not a
    log store)."""

    def __init__(self, service: str, keep: int = 2000) -> None:
        self.service = service
        self._keep = keep
        self._traces: OrderedDict[str, list[_Step]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, kind: str, what: str, request_id: str | None = None,
               elapsed_ms: float | None = None, **detail: Any) -> None:
        rid = request_id or current_request_id()
        if rid is None:
            return
        step = _Step(kind, what, time.time(), elapsed_ms, detail or None)
        with self._lock:
            steps = self._traces.get(rid)
            if steps is None:
                self._traces[rid] = [step]
                while len(self._traces) > self._keep:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(rid)
                steps.append(step)

    def steps(self, request_id: str) -> list[TraceStep]:
        with self._lock:
            kept = list(self._traces.get(request_id, []))
        return [step.model(self.service) for step in kept]

    def recent(self, limit: int = 50) -> list[tuple[str, TraceStep]]:
        """The newest requests first, each with its first step (the console lists them to pick
        one to follow)."""
        with self._lock:
            newest = list(self._traces.items())[-limit:]
        return [(rid, steps[0].model(self.service)) for rid, steps in reversed(newest) if steps]
