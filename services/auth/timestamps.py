"""Request timestamps: the formats clients send, the 15-minute window, presign lifetimes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # 604800: SigV4 presigned URLs live at most a week
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")


def utc_now(now: datetime | None) -> datetime:
    """The injected clock, or the real one; naive datetimes are taken to be UTC."""
    if now is None:
        return datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _in_utc(moment: datetime) -> datetime | None:
    """A parsed time in UTC; None for one UTC cannot hold (0001-01-01T00:00:00+05:00)."""
    try:
        return _aware(moment).astimezone(timezone.utc)
    except OverflowError:
        return None


def parse_amz_date(text: str) -> datetime | None:
    """20150830T123600Z, the SigV4 basic ISO 8601 form."""
    text = text.strip()
    if _AMZ_DATE.fullmatch(text):
        # Every signed request carries one: the fields by position cost a tenth of strptime.
        try:
            return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
                            int(text[11:13]), int(text[13:15]), tzinfo=timezone.utc)
        except ValueError:  # month 13, a 61st second...: strptime below decides
            pass
    try:
        return datetime.strptime(text, AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_http_date(text: str) -> datetime | None:
    """RFC 1123 ("Tue, 27 Mar 2007 19:36:42 +0000" or "... GMT")."""
    try:
        return _in_utc(parsedate_to_datetime(text.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_iso8601(text: str) -> datetime | None:
    """SigV2's Timestamp/Expires: 2024-01-02T03:04:05Z, with or without fraction or offset."""
    try:
        return _in_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def parse_any(text: str) -> datetime | None:
    """A Date or x-amz-date header: clients use either the basic ISO form or RFC 1123."""
    return parse_amz_date(text) or parse_http_date(text) or parse_iso8601(text)


def to_amz_date(moment: datetime) -> str:
    m = _aware(moment).astimezone(timezone.utc)
    if m.year < 1000:  # strftime's %Y does not pad on every platform; keep its answer
        return m.strftime(AMZ_DATE_FORMAT)
    return f"{m.year}{m.month:02d}{m.day:02d}T{m.hour:02d}{m.minute:02d}{m.second:02d}Z"


def to_iso(moment: datetime) -> str:
    return _aware(moment).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_skewed(request_time: datetime, now: datetime) -> bool:
    return abs(request_time - now) > MAX_SKEW
