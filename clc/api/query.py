"""What every Describe action shares: EC2 filters and MaxResults/NextToken paging.

A Describe declares, per filter name, how to read that value from an item; `apply_filters`
rejects names it does not know (`InvalidParameterValue`, as EC2 does), treats several values of
one filter as OR and several filters as AND, honours `*` and `?` wildcards, and understands
`tag:KEY`, `tag-key` and `tag-value` wherever the item has tags."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from services.errors import EC2Error

Item = TypeVar("Item")
Getter = Callable[[Any], Any]  # returns a value, a list of values, or None


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _as_strings(v)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def _matches(candidates: list[str], wanted: list[str]) -> bool:
    for pattern in wanted:
        for candidate in candidates:
            if pattern == candidate or (("*" in pattern or "?" in pattern)
                                        and fnmatch.fnmatchcase(candidate, pattern)):
                return True
    return False


def exact_values(filters: Sequence[dict[str, Any]] | None, name: str) -> list[str] | None:
    """The values of the one filter called `name` when they name things exactly (no wildcard):
    what a database query can apply before the rows are loaded. None otherwise (no such
    filter, two of them, a wildcard): the rows are filtered after loading, as for every other."""
    named = [f for f in filters or [] if f.get("Name") == name]
    if len(named) != 1:
        return None
    values = [str(v) for v in named[0].get("Values") or []]
    if not values or any("*" in v or "?" in v for v in values):
        return None
    return values


def apply_filters(items: Iterable[Item], filters: Sequence[dict[str, Any]] | None,
                  getters: dict[str, Getter],
                  tags_of: Callable[[Item], dict[str, str]] | None = None) -> list[Item]:
    checks: list[Callable[[Item], bool]] = []
    for flt in filters or []:
        name = flt.get("Name")
        values = [str(v) for v in flt.get("Values", [])]
        if not name:
            raise EC2Error("InvalidParameterValue", "A filter must have a Name.")
        checks.append(_check_for(name, values, getters, tags_of))
    return [item for item in items if all(check(item) for check in checks)]


def _check_for(name: str, values: list[str], getters: dict[str, Getter],
               tags_of: Callable[[Any], dict[str, str]] | None) -> Callable[[Any], bool]:
    if name in getters:
        getter = getters[name]
        return lambda item: _matches(_as_strings(getter(item)), values)
    if tags_of is not None:
        if name.startswith("tag:"):
            key = name[4:]
            return lambda item: key in tags_of(item) and _matches([tags_of(item)[key]], values)
        if name == "tag-key":
            return lambda item: _matches(list(tags_of(item)), values)
        if name == "tag-value":
            return lambda item: _matches(list(tags_of(item).values()), values)
    raise EC2Error("InvalidParameterValue", f"The filter '{name}' is invalid")


def _decode_token(token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise EC2Error("InvalidPaginationToken", f"The pagination token '{token}' is invalid.") from None
    if offset < 0:
        raise EC2Error("InvalidPaginationToken", f"The pagination token '{token}' is invalid.")
    return offset


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def paginate(items: Sequence[Item], max_results: int | None, next_token: str | None,
             *, minimum: int = 5, maximum: int = 1000) -> tuple[list[Item], str | None]:
    """One page of `items` (already in a stable order) and the token of the next, if any."""
    if max_results is not None and not minimum <= max_results <= maximum:
        raise EC2Error("InvalidParameterValue",
                       f"Value ( {max_results} ) for parameter maxResults is invalid. "
                       f"Expecting a value between {minimum} and {maximum}.")
    start = _decode_token(next_token) if next_token else 0
    if max_results is None:
        return list(items[start:]), None
    end = start + max_results
    return list(items[start:end]), (_encode_token(end) if end < len(items) else None)


def paged(member: str, items: Sequence[Item], max_results: int | None, next_token: str | None,
          render: Callable[[list[Item]], Iterable[Any]], *, minimum: int = 5,
          maximum: int = 1000) -> dict[str, Any]:
    """A Describe answer: one page of `items`, rendered, under `member`, and its NextToken
    when more follow."""
    page, token = paginate(items, max_results, next_token, minimum=minimum, maximum=maximum)
    result: dict[str, Any] = {member: render(page)}
    if token:
        result["NextToken"] = token
    return result
