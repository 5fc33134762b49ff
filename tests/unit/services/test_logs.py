"""Service logs (services/logs.py): each record is one JSON object on one line with its time
in UTC, level, service, logger and message, the request id bound where it was logged (none
when none is) and any exception's text; a service process logs that way at LOG_LEVEL, uvicorn's
own loggers included, while logging someone else configured is left alone."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from services import logs
from services.tracing import bind_request_id, unbind_request_id

ROOT = Path(__file__).resolve().parents[3]


def record(message: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("eucasim.test").makeRecord(
        "eucasim.test", level, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_record_is_one_json_line_with_its_fields() -> None:
    line = logs.JsonLines("cc").format(record("node %s: %d cores\nbooked", "node-1", 4))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["service"] == "cc" and entry["logger"] == "eucasim.test"
    assert entry["message"] == "node node-1: 4 cores\nbooked"
    assert entry["time"].endswith("Z")
    assert datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert "request_id" not in entry and "exception" not in entry


def test_the_bound_request_id_goes_on_the_line() -> None:
    token = bind_request_id("req-1")
    try:
        bound = json.loads(logs.JsonLines("clc").format(record("hello")))
        given = json.loads(logs.JsonLines("clc").format(record("hello", request_id="req-2")))
    finally:
        unbind_request_id(token)
    assert bound["request_id"] == "req-1"
    assert given["request_id"] == "req-2"
    assert "request_id" not in json.loads(logs.JsonLines("clc").format(record("after")))


def test_an_exception_goes_on_the_line_as_its_traceback() -> None:
    try:
        raise ValueError("bad disk")
    except ValueError:
        failed = record("launch failed", level=logging.ERROR)
        failed.exc_info = sys.exc_info()
    entry = json.loads(logs.JsonLines("nc").format(failed))
    assert entry["level"] == "ERROR" and entry["message"] == "launch failed"
    assert entry["exception"].startswith("Traceback") and "ValueError: bad disk" in entry["exception"]


def test_logging_someone_else_configured_is_left_alone() -> None:
    # Under pytest the root logger has pytest's capture handlers.
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    assert logs.configure("clc", "DEBUG", io.StringIO()) is False
    assert (list(root.handlers), root.level) == before


SERVICE_PROCESS = """
import logging, sys, threading
from services import logs
from services.tracing import bind_request_id
logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(sys.stdout))  # as uvicorn does
assert logs.configure("sc", sys.argv[1])
assert logs.configure("sc", sys.argv[1])  # again: still one handler
logging.getLogger("uvicorn.error").info("Started server process")
logging.getLogger("httpx").info("HTTP Request: POST http://cc/internal/describe")
logging.getLogger("sc.volumes").debug("looking")
def serve():
    bind_request_id("req-7")
    logging.getLogger("sc.volumes").warning("vol-1 is full")
thread = threading.Thread(target=serve); thread.start(); thread.join()
"""


def run_service_process(level: str) -> tuple[list[dict[str, object]], str]:
    done = subprocess.run([sys.executable, "-c", SERVICE_PROCESS, level], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stderr.splitlines()], done.stdout


def test_a_service_process_logs_json_lines_on_stderr_uvicorn_included() -> None:
    lines, stdout = run_service_process("INFO")
    assert stdout == ""  # uvicorn's own handler is gone
    assert [(e["logger"], e["message"], e.get("request_id")) for e in lines] == [
        ("uvicorn.error", "Started server process", None),
        ("sc.volumes", "vol-1 is full", "req-7")]
    assert all(e["service"] == "sc" for e in lines)


def test_the_level_is_the_configured_one() -> None:
    debug, _ = run_service_process("DEBUG")
    assert {"looking", "HTTP Request: POST http://cc/internal/describe"} <= {e["message"] for e in debug}
    warning, _ = run_service_process("WARNING")
    assert [e["message"] for e in warning] == ["vol-1 is full"]
