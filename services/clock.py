"""Time as every service reads and stores it: aware UTC, and how long finished records stay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.faults import PROCESS

# Terminated instances stay visible this long, as in EC2; the CLC and the NC both keep them.
KEEP_TERMINATED = timedelta(hours=1)


def utcnow() -> datetime:
    skew = PROCESS.skew_s       # 0 unless an operator injected clock-skew (services/faults.py)
    now = datetime.now(timezone.utc)
    return now + timedelta(seconds=skew) if skew else now


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every service writes them in UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
