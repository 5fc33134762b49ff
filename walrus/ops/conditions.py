"""HTTP preconditions and byte ranges as S3 applies them (RFC 7232 / 7233)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from services.errors import S3Error
from walrus.models import ObjectColumns

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class NotModified(Exception):
    """The client's copy is current: answer 304 with the validators and no body."""


def _etags(value: str) -> list[str]:
    return [v.strip().removeprefix("W/").strip('"') for v in value.split(",")]


def _matches(value: str, etag: str) -> bool:
    tags = _etags(value)
    return "*" in tags or etag in tags


def etag_matches(value: str, etag: str) -> bool:
    """Whether an If-Match style header value names `etag` (or is `*`)."""
    return _matches(value, etag)


def _date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def precondition_failed(condition: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did "
                   "not hold", 412, Condition=condition)


def check_conditions(headers: Mapping[str, str], obj: ObjectColumns) -> None:
    """Raise 412 or NotModified as the request's If-* headers demand."""
    modified = _seconds(obj.last_modified)
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _matches(if_match, obj.etag):
            raise precondition_failed("If-Match")
    else:
        since = _date(headers.get("if-unmodified-since", ""))
        if since is not None and modified > since:
            raise precondition_failed("If-Unmodified-Since")
    if_none = headers.get("if-none-match")
    if if_none is not None:
        if _matches(if_none, obj.etag):
            raise NotModified()
    else:
        since = _date(headers.get("if-modified-since", ""))
        if since is not None and modified <= since:
            raise NotModified()


def check_copy_source_conditions(headers: Mapping[str, str], obj: ObjectColumns) -> None:
    modified = _seconds(obj.last_modified)
    value = headers.get("x-amz-copy-source-if-match")
    if value is not None and not _matches(value, obj.etag):
        raise precondition_failed("x-amz-copy-source-If-Match")
    value = headers.get("x-amz-copy-source-if-none-match")
    if value is not None and _matches(value, obj.etag):
        raise precondition_failed("x-amz-copy-source-If-None-Match")
    since = _date(headers.get("x-amz-copy-source-if-unmodified-since", ""))
    if since is not None and modified > since:
        raise precondition_failed("x-amz-copy-source-If-Unmodified-Since")
    since = _date(headers.get("x-amz-copy-source-if-modified-since", ""))
    if since is not None and modified <= since:
        raise precondition_failed("x-amz-copy-source-If-Modified-Since")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range asked for, None for the whole object (no header, several
    ranges or a header S3 would ignore); 416 InvalidRange when nothing of it exists."""
    if not value:
        return None
    match = _RANGE.match(value.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise invalid_range(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise invalid_range(size)
    return start, min(end, size - 1)


def invalid_range(size: int) -> S3Error:
    return S3Error("InvalidRange", "The requested range is not satisfiable", 416,
                   ActualObjectSize=str(size), RangeRequested="")
