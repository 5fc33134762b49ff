"""`eucasim backup` and every service: a short pause of writes while the copy is taken.

Routes (internal, signed with the cloud secret), served by every service (services/service_app.py):
  POST /internal/quiesce  Quiesce  -> WriteState (closed; `busy` sessions still under way)
  POST /internal/resume            -> WriteState (open)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

QUIESCE_ROUTE = "/internal/quiesce"
RESUME_ROUTE = "/internal/resume"


class Quiesce(BaseModel):
    # The gate opens by itself after this long, so a backup that dies cannot freeze a service.
    hold_s: float = Field(60.0, gt=0, le=600)
    # How long to wait for the sessions already under way to end.
    drain_s: float = Field(10.0, ge=0, le=120)


class WriteState(BaseModel):
    service: str
    paused: bool
    busy: int = 0
