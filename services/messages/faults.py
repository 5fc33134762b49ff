"""Faults an operator injects into a running cloud (`eucasim fault`), per service.

Routes (internal, signed with the cloud secret), on the NC process's root:
  GET    /internal/faults               -> FaultList
  POST   /internal/faults   InjectFault -> FaultList
  DELETE /internal/faults               -> FaultList (every fault cleared)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FAULTS_ROUTE = "/internal/faults"

# node-down: the node answers nothing (its routes 503, the process's describe leaves it out);
# node-slow: its hypervisor takes `seconds` per call; disk-full: its instance store refuses
# to write (ENOSPC), so launches on it fail with that reason.
NodeFaultKind = Literal["node-down", "node-slow", "disk-full"]


class InjectFault(BaseModel):
    kind: NodeFaultKind
    target: str = Field(pattern=r"^node-\d+$")     # a simulated node of this process
    seconds: float = Field(0.0, ge=0, le=3600)


class FaultList(BaseModel):
    faults: list[InjectFault]


# Faults of a whole service process, on every service (services/service_app.py):
#   GET/POST/DELETE /internal/process-faults
# link-cut: this process's internal calls to `target` (a base URL) fail as if the network
# dropped them; clock-skew: this process's clock runs `seconds` ahead (negative: behind), for
# its own timers, the timestamps it signs and the ones it checks; disk-full: the service's
# data writes fail with ENOSPC (the SC's new volumes).
PROCESS_FAULTS_ROUTE = "/internal/process-faults"

ProcessFaultKind = Literal["link-cut", "clock-skew", "disk-full"]


class InjectProcessFault(BaseModel):
    kind: ProcessFaultKind
    target: str = ""                 # link-cut: the other service's base URL
    seconds: float = Field(0.0, ge=-86400 * 366, le=86400 * 366)


class ProcessFaultList(BaseModel):
    faults: list[InjectProcessFault]
