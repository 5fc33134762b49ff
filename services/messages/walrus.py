"""Walrus's internal lifecycle API: one lifecycle pass at a moment the caller names (an
administrator catching up, or a test driving Walrus's clock), answered with what it did.

Route (on Walrus, signed internal call):
  POST /internal/walrus/lifecycle   RunLifecycle -> LifecycleReport
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

LIFECYCLE_ROUTE = "/internal/walrus/lifecycle"


class RunLifecycle(BaseModel):
    now: datetime | None = None    # None: Walrus's own clock


class LifecycleReport(BaseModel):
    expired: int = 0
    markers_added: int = 0
    markers_removed: int = 0
    noncurrent_removed: int = 0
    uploads_aborted: int = 0
