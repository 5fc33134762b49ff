"""Faults an experiment injects on its schedule: `KIND:TARGET@T[s][+D[s]]` — at workload
second T inject KIND on TARGET, and clear it D seconds later when +D is given
(`node-down:node-3@120s`, `node-slow:node-1=2@60+600`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORM = re.compile(r"^(?P<kind>[a-z-]+):(?P<target>[^@]+)@(?P<at>\d+(\.\d+)?)s?(\+(?P<for>\d+(\.\d+)?)s?)?$")


@dataclass(frozen=True)
class ScheduledFault:
    kind: str
    target: str
    at_s: float
    for_s: float | None = None


def parse_fault(text: str) -> ScheduledFault:
    match = _FORM.match(text.strip())
    if match is None:
        raise ValueError(f"--fault {text!r}: expected KIND:TARGET@SECONDS[+SECONDS], e.g. node-down:node-3@120s")
    duration = match.group("for")
    return ScheduledFault(match.group("kind"), match.group("target"), float(match.group("at")),
                          float(duration) if duration else None)
