"""Scalar values on the EC2 wire: query-string text to Python values (requests) and Python
values to XML text (responses). Shape-free: the readers and writers pick one per shape type."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import math
import re
from collections.abc import Callable
from typing import Any

from services.errors import EC2Error

UTC = dt.timezone.utc

# ---------------------------------------------------------------------------------- requests

_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_WORDS = {"infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
                "inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_EPOCH = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def invalid_value(param: str, text: str, expected: str) -> EC2Error:
    return EC2Error("InvalidParameterValue",
                    f"Invalid value '{text}' for parameter {param}: expected {expected}.")


def read_string(text: str, param: str) -> str:
    return text


def read_integer(text: str, param: str) -> int:
    # int() alone would also take " 7", "7_000" and full-width digits; EC2 takes decimal only.
    if not _INTEGER.fullmatch(text):
        raise invalid_value(param, text, "an integer")
    return int(text)


def read_boolean(text: str, param: str) -> bool:
    # Lower case is what every client sends; boto 2 code sometimes writes str(True).
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise invalid_value(param, text, "true or false")


def read_float(text: str, param: str) -> float:
    # botocore writes infinities and NaN as words (serialize.py _handle_float).
    if _FLOAT.fullmatch(text):
        return float(text)
    word = _FLOAT_WORDS.get(text.lower())
    if word is None:
        raise invalid_value(param, text, "a number")
    return word


def read_timestamp(text: str, param: str) -> dt.datetime:
    """ISO 8601 (what botocore sends, with or without fractions) or epoch seconds; always an
    aware datetime in UTC."""
    if _EPOCH.fullmatch(text):
        try:
            return dt.datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            raise invalid_value(param, text, "a timestamp") from None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid_value(param, text, "an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def read_blob(text: str, param: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(param, text, "base64-encoded data") from None


READERS: dict[str, Callable[[str, str], Any]] = {
    "string": read_string,
    "character": read_string,
    "integer": read_integer,
    "long": read_integer,
    "boolean": read_boolean,
    "float": read_float,
    "double": read_float,
    "timestamp": read_timestamp,
    "blob": read_blob,
}

# --------------------------------------------------------------------------------- responses

# Characters that must not reach the XML text as they are: markup, and \r, which an XML parser
# would turn into \n. The rest of the class cannot appear in XML 1.0 at all.
_NEEDS_WORK = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_REPLACEMENTS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}


def _replace(match: re.Match[str]) -> str:
    # Characters XML 1.0 cannot carry become U+FFFD: invalid XML would make botocore report a
    # 500 and retry, losing the whole answer for one stray control character.
    return _REPLACEMENTS.get(match.group(), "\ufffd")


# Strings known to need no escaping: answers repeat the same values (states, types, zones,
# and the same ids on every Describe), and a set look-up is cheaper than the regular
# expression. Whether a string is clean never changes, so the set is only ever added to, up to
# a bound that keeps its memory small.
CLEAN_STRINGS: set[str] = set()
_CLEAN_STRINGS_MAX = 65536


def is_clean(text: str) -> bool:
    """True when escape() would return `text` unchanged; remembered (the writer checks the
    set itself first)."""
    if _NEEDS_WORK.search(text) is not None:
        return False
    if len(CLEAN_STRINGS) < _CLEAN_STRINGS_MAX:
        CLEAN_STRINGS.add(text)
    return True


def escape(text: str) -> str:
    if _NEEDS_WORK.search(text) is None:
        return text
    return _NEEDS_WORK.sub(_replace, text)


class WrongType(ValueError):
    """A handler put a value where the output shape wants something else. `path` collects the
    member names and list indexes on the way out, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.path: list[str] = []


def write_string(value: Any) -> str:
    if type(value) is str:
        return escape(value)
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return escape(str.__str__(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise WrongType(f"expected a string, got {type(value).__name__} {value!r}")


def write_integer(value: Any) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    raise WrongType(f"expected an integer, got {type(value).__name__} {value!r}")


def write_boolean(value: Any) -> str:
    # Only the exact text "true" parses as True in botocore; anything else silently is False.
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise WrongType(f"expected a bool, got {type(value).__name__} {value!r}")


def write_float(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    raise WrongType(f"expected a number, got {type(value).__name__} {value!r}")


def format_timestamp(value: dt.datetime) -> str:
    """2024-01-01T00:00:00.000Z, as EC2 writes them; naive datetimes are taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z")


def write_timestamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_timestamp(dt.datetime.fromtimestamp(value, UTC))
    if isinstance(value, str):
        # Already text (e.g. stored as ISO 8601): re-read it so a malformed one fails here.
        try:
            return format_timestamp(read_timestamp(value, "timestamp"))
        except EC2Error:
            raise WrongType(f"expected a datetime, got the string {value!r}") from None
    raise WrongType(f"expected a datetime, got {type(value).__name__} {value!r}")


def write_blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise WrongType(f"expected bytes, got {type(value).__name__} {value!r}")


WRITERS: dict[str, Callable[[Any], str]] = {
    "string": write_string,
    "character": write_string,
    "integer": write_integer,
    "long": write_integer,
    "boolean": write_boolean,
    "float": write_float,
    "double": write_float,
    "timestamp": write_timestamp,
    "blob": write_blob,
}
