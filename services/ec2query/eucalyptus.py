"""Eucalyptus's dialect of the EC2 Query protocol: the few actions whose request and answer
Eucalyptus defined itself, before (or unlike) AWS, and which its own clients still speak.

Eucalyptus clients say who they are by their `Version` (a release number such as `3.3.0`
where AWS clients send a date), or by calling Eucalyptus's own path `/services/Eucalyptus`.
Eucalyptus answered these actions in its message namespace, `http://msgs.eucalyptus.com/`
followed by its release (no trailing slash: Apache libcloud's Eucalyptus driver matches the
namespace exactly). botocore has no model of these shapes, so each action declares its request
members here and its answer is written as the handler's dict says, lists as `<item>`s."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.ec2query.scalars import escape, read_boolean
from services.ec2query.writer import XML_DECLARATION

# The release eucasim answers as when a Eucalyptus client does not name one (it came on
# Eucalyptus's path with an AWS Version, as libcloud's driver does): the release libcloud's
# EucNodeDriver and euca2ools 3 were written against.
EUCALYPTUS_VERSION = "3.3.0"
EUCALYPTUS_PATH = "/services/Eucalyptus"
_RELEASE = re.compile(r"[0-9]+(\.[0-9]+){1,3}")


def is_eucalyptus_version(version: str | None) -> bool:
    """`3.3.0` is a Eucalyptus release; `2016-11-15` is an AWS API version."""
    return bool(version) and _RELEASE.fullmatch(version or "") is not None


def namespace(version: str) -> str:
    return f"http://msgs.eucalyptus.com/{version}"


@dataclass(frozen=True)
class Member:
    """A request parameter: `wire` as the client sends it (`InstanceType` for
    InstanceType.1, InstanceType.2, …), `name` as the handler takes it."""

    wire: str
    name: str
    kind: type  # str, bool or list (of str)


# The request members of each Eucalyptus-shaped action (Eucalyptus's DescribeInstanceTypesType).
REQUESTS: dict[str, tuple[Member, ...]] = {
    "DescribeInstanceTypes": (Member("InstanceType", "InstanceTypes", list),
                              Member("Verbose", "Verbose", bool),
                              Member("Availability", "Availability", bool)),
}


def speaks_eucalyptus(action: str, version: str | None, path: str) -> bool:
    """Whether a call to `action` wants Eucalyptus's answer rather than AWS's."""
    if action not in REQUESTS:
        return False
    return is_eucalyptus_version(version) or path.rstrip("/") == EUCALYPTUS_PATH


def answer_version(version: str | None) -> str:
    """The release to answer in: the client's, else the one eucasim speaks as."""
    return version if version and is_eucalyptus_version(version) else EUCALYPTUS_VERSION


def parse_params(action: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The declared members of `action` from the decoded pairs; others are ignored, as
    Eucalyptus's binding ignored them. Raises EC2Error (InvalidParameterValue) on a boolean
    that is neither true nor false."""
    members = {m.wire: m for m in REQUESTS[action]}
    scalars: dict[str, Any] = {}
    lists: dict[str, list[tuple[int, str]]] = {}
    for key, value in pairs:
        base, _, index = key.partition(".")
        member = members.get(base)
        if member is None:
            continue
        if member.kind is list:
            if index.isascii() and index.isdigit():
                lists.setdefault(member.name, []).append((int(index), value))
        elif not index and member.name not in scalars:
            scalars[member.name] = read_boolean(value, key) if member.kind is bool else value
    params = dict(scalars)
    for name, items in lists.items():
        params[name] = [value for _, value in sorted(items)]
    return params


def render(action: str, result: Mapping[str, Any], request_id: str, version: str) -> bytes:
    """`<{action}Response xmlns="http://msgs.eucalyptus.com/{version}">`, `<requestId>`, then
    `result`: a dict's keys become elements in order, a list's members `<item>`s, booleans
    `true`/`false`; None values are left out."""
    out = [XML_DECLARATION, f'<{action}Response xmlns="{namespace(version)}">',
           "<requestId>", escape(request_id), "</requestId>"]
    _write(out, result)
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")


def _write(out: list[str], value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is None:
                continue
            out.append(f"<{key}>")
            _write(out, item)
            out.append(f"</{key}>")
    elif isinstance(value, (list, tuple)):
        for item in value:
            out.append("<item>")
            _write(out, item)
            out.append("</item>")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(escape(value))
    else:
        raise TypeError(f"cannot write a {type(value).__name__} in Eucalyptus's answer")
