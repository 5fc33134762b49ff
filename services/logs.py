"""Structured logs: a service process writes one JSON object per line to stderr (which
`eucasim up` sends to `$EUCASIM_HOME/logs/<service>.log`), each carrying the request id bound
when it was written, so `grep <RequestId>` over the logs finds what every service did for one
user call. `eucasim trace` remains the way to follow a request step by step.

    {"time": "2026-12-02T01:40:12.345Z", "level": "INFO", "service": "cc",
     "logger": "eucasim.calls", "message": "POST /internal/instances -> 200 in 41.2 ms",
     "request_id": "6f1c…"}"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from services.tracing import current_request_id

# Chatty at INFO on every call, polls included (httpx: one line per request sent; uvicorn's
# access log: one per request received): heard only when the operator asks for DEBUG.
CHATTY = ("httpx", "uvicorn.access")


class JsonLines(logging.Formatter):
    """One JSON object per record; the request id is the one bound in the thread or task that
    logged (services.tracing), or a `request_id` given in `extra`."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it rather than adding a second one."""


def configure(service: str, level: str = "INFO", stream: IO[str] | None = None) -> bool:
    """Make this process log JSON lines as `service` at `level`, uvicorn's own loggers included.
    Logging someone else set up (pytest's capture, a program embedding the app) is left alone:
    False then."""
    root = logging.getLogger()
    if any(not isinstance(h, _ServiceHandler) for h in root.handlers):
        return False
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _ServiceHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines(service))
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric)
    # uvicorn gave its loggers their own plain-text handlers (and the launcher's
    # --log-level); through the root they get this format and this level.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    return True
