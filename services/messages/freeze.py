"""Freezing a running guest's file systems around a snapshot's point-in-time step, so the
snapshot is application-consistent rather than crash-consistent: the CLC asks the instance's
CC, the CC the instance's NC (the same bodies on both hops), and the NC asks the guest's agent
through libvirt (virDomainFSFreeze / virDomainFSThaw, which need the QEMU guest agent).

Routes (on the CC, and the same paths on the NC; signed):
  POST /internal/instances/{instance_id}/freeze  FreezeFilesystems -> FreezeResult
  POST /internal/instances/{instance_id}/thaw    ThawFilesystems   -> FreezeResult

A freeze that cannot happen is not an error: the answer says `frozen: false` and why (no guest
agent, libvirt's test driver runs no guest), and the snapshot is crash-consistent. A thaw always
follows a freeze: the CLC thaws in a `finally` around the SC's step, and the NC thaws by itself
once `thaw_after_s` has passed without one (a CLC that died between the two must not leave a
guest's file systems frozen). A thaw answers `frozen: false` and how many file systems it
thawed; thawing what is not frozen thaws none and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

FREEZE_ROUTE = "/internal/instances/{instance_id}/freeze"
THAW_ROUTE = "/internal/instances/{instance_id}/thaw"

# Long enough for the SC's point-in-time step (milliseconds) and the calls around it.
DEFAULT_THAW_AFTER_S = 30.0


class FreezeFilesystems(BaseModel):
    volume_id: str                  # the volume being snapshotted (for the trace)
    thaw_after_s: float = Field(DEFAULT_THAW_AFTER_S, gt=0, le=600)


class ThawFilesystems(BaseModel):
    volume_id: str


class FreezeResult(BaseModel):
    instance_id: str
    frozen: bool                    # after a freeze: the guest's file systems are frozen now
    filesystems: int = 0            # how many the guest agent froze (or thawed)
    reason: str | None = None       # why not, when a freeze could not happen
    at: datetime                    # when the NC's hypervisor call returned
