"""S3 answers from operation results keyed by botocore's member names: what botocore's
RestXMLParser reads back.

A result is a dict of the output shape's members (`{"Contents": [...], "IsTruncated": True}`);
the model decides where each goes: members with `location: header` (or `headers`, a map of
prefixed headers) become headers, a `payload` member is the whole body (its own element, or raw
text for a string or blob), the rest are the children of the answer's root element. Element
names come from each member's locationName, else its member name; flattened lists repeat their
element with no wrapper; timestamps are ISO 8601 in documents and RFC 822 in headers unless the
shape names a format. Each operation is compiled once into writers that append text pieces, as
the EC2 codec does (services/ec2query/writer.py), so a listing of 1,000 keys is one pass."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from services.ec2query import model as ec2_model
from services.ec2query.scalars import (CLEAN_STRINGS, WRITERS, WrongType, escape, is_clean,
                                       write_string, write_timestamp)
from services.s3xml import model
from services.s3xml.documents import S3_NS, XML_DECLARATION, http_date

Out = list[str]
# A compiled element writer: appends a whole element (or, for a flattened list, its run of
# elements) for a value.
ElementWriter = Callable[[Out, Any], None]
ScalarWriter = Callable[[Any], str]
# Kinds of member in a structure's table.
STRING, SCALAR, ELEMENT, MIXABLE, ELSEWHERE = 0, 1, 2, 3, 4


class ShapeMismatch(ValueError):
    """An operation returned something its output shape does not describe: a bug in Walrus,
    so loud rather than silently dropped from the answer."""


class Mixed(list[tuple[str, Any]]):
    """Items of two or more flattened lists of one structure, written in this order as
    (member name, item) pairs: S3 mixes ListObjectVersions' Version and DeleteMarker elements
    key by key. Give it as the value of any one of the members it mixes."""


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: dict[str, str]
    status: int | None = None


def render(operation: str, result: Mapping[str, Any]) -> Answer:
    """The body, headers and (if the shape has one) status of `operation`'s answer. None values
    are left out; raises ShapeMismatch on members or types the output shape does not have."""
    try:
        compiled = _compiled(operation)
    except KeyError:
        raise ShapeMismatch(f"{operation} is not an S3 operation") from None
    try:
        return compiled(result)
    except WrongType as error:
        path = ".".join(reversed(error.path))
        raise ShapeMismatch(f"{operation} result{'.' if path else ''}{path}: {error}") from None


def preload(operations: list[str]) -> None:
    """Compile these operations' writers now (at service start) rather than in a request."""
    for name in operations:
        _compiled(name)


# --------------------------------------------------------------------------- per operation

_by_operation: ec2_model.PerOperation[Callable[[Mapping[str, Any]], Answer]] = \
    ec2_model.PerOperation()
_elements: dict[tuple[str, str, str], ElementWriter] = {}


def _compiled(operation: str) -> Callable[[Mapping[str, Any]], Answer]:
    return _by_operation.get(operation, lambda: _compile_operation(operation))


def _header_text(shape: Shape) -> ScalarWriter:
    if shape.type_name == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "rfc822")
        return _timestamp_writer(fmt)
    writer = WRITERS.get(shape.type_name)
    if writer is None:
        raise NotImplementedError(f"S3 header of type {shape.type_name}")
    return writer


def _compile_operation(name: str) -> Callable[[Mapping[str, Any]], Answer]:
    shape = model.operation(name).output_shape
    headers: dict[str, tuple[str, ScalarWriter]] = {}
    prefixed: dict[str, tuple[str, ScalarWriter]] = {}
    status_member: str | None = None
    body_members: set[str] = set()
    if shape is not None:
        for member_name, member in shape.members.items():
            location = member.serialization.get("location")
            if location == "header":
                headers[member_name] = (member.serialization.get("name", member_name),
                                        _header_text(member))
            elif location == "headers":
                assert isinstance(member, MapShape)
                prefixed[member_name] = (member.serialization.get("name", ""),
                                         _header_text(member.value))
            elif location == "statusCode":
                status_member = member_name
            else:
                body_members.add(member_name)
    payload = shape.serialization.get("payload") if shape is not None else None
    body = _body_writer(name, shape, payload, body_members)
    known = set(headers) | set(prefixed) | body_members | ({status_member} - {None})

    def render_one(result: Mapping[str, Any]) -> Answer:
        out_headers: dict[str, str] = {}
        status = None
        for key, value in result.items():
            if value is None:
                continue
            header = headers.get(key)
            if header is not None:
                out_headers[header[0]] = header[1](value)
            elif key in prefixed:
                prefix, text = prefixed[key]
                for sub, item in value.items():
                    out_headers[prefix + sub] = text(item)
            elif key == status_member:
                status = int(value)
            elif key not in known:
                raise WrongType(f"{key!r} is not a member of {name}'s output "
                                f"(members: {', '.join(sorted(known))})")
        return Answer(body(result), out_headers, status)

    return render_one


def _body_writer(name: str, shape: StructureShape | None, payload: str | None,
                 body_members: set[str]) -> Callable[[Mapping[str, Any]], bytes]:
    if shape is None or not body_members:
        return lambda result: b""
    if name in model.TEXT_ROOTS:
        (member,) = body_members
        tag = model.TEXT_ROOTS[name]
        text = _scalar(shape.members[member])

        def text_root(result: Mapping[str, Any]) -> bytes:
            value = result.get(member)
            inner = "" if value is None else text(value)
            return (f'{XML_DECLARATION}<{tag} xmlns="{S3_NS}">{inner}</{tag}>').encode("utf-8")
        return text_root
    if payload is not None:
        member = shape.members[payload]
        if isinstance(member, StructureShape):
            tag = str(member.serialization.get("name") or payload)
            element = _structure(member, tag, f' xmlns="{S3_NS}"')

            def structure_payload(result: Mapping[str, Any]) -> bytes:
                value = result.get(payload)
                if value is None:
                    return b""
                out = [XML_DECLARATION]
                element(out, value)
                return "".join(out).encode("utf-8")
            return structure_payload
        if member.type_name == "blob":
            return lambda result: bytes(result.get(payload) or b"")
        return lambda result: str(result.get(payload) or "").encode("utf-8")
    root = model.ROOTS.get(name)
    if root is None:
        raise NotImplementedError(f"the root element of {name}'s answer is not known")
    element = _structure(shape, root, f' xmlns="{S3_NS}"', skip=set(shape.members) - body_members)

    def document(result: Mapping[str, Any]) -> bytes:
        out = [XML_DECLARATION]
        element(out, result)
        return "".join(out).encode("utf-8")
    return document


# ------------------------------------------------------------------------------ elements

def _timestamp_writer(fmt: str) -> ScalarWriter:
    if fmt == "iso8601":
        return write_timestamp
    if fmt == "rfc822":
        def rfc822(value: Any) -> str:
            if isinstance(value, dt.datetime):
                return http_date(value)
            return http_date(dt.datetime.fromisoformat(write_timestamp(value).replace("Z", "")))
        return rfc822
    if fmt == "unixTimestamp":
        def epoch(value: Any) -> str:
            if isinstance(value, dt.datetime):
                aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
                return str(int(aware.timestamp()))
            raise WrongType(f"expected a datetime, got {type(value).__name__}")
        return epoch
    raise NotImplementedError(f"timestamp format {fmt}")


def _write_blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise WrongType(f"expected bytes, got {type(value).__name__}")


def _scalar(shape: Shape) -> ScalarWriter:
    if shape.type_name == "timestamp":
        return _timestamp_writer(shape.serialization.get("timestampFormat", "iso8601"))
    if shape.type_name == "blob":
        return _write_blob
    writer = WRITERS.get(shape.type_name)
    if writer is None:
        raise NotImplementedError(f"S3 output shape {shape.name} of type {shape.type_name}")
    return writer


def _tag_of(member: Shape, member_name: str) -> str:
    """The element name botocore's parser looks for (BaseXMLResponseParser._member_key_name)."""
    if isinstance(member, ListShape) and member.serialization.get("flattened"):
        inner = member.member.serialization.get("name")
        if inner:
            return str(inner)
    return str(member.serialization.get("name") or member_name)


def _namespace_attribute(shape: Shape) -> str:
    namespace = shape.serialization.get("xmlNamespace")
    if not namespace:
        return ""
    if isinstance(namespace, str):
        return f' xmlns="{escape(namespace)}"'
    prefix = namespace.get("prefix")
    uri = escape(namespace["uri"])
    return f' xmlns:{prefix}="{uri}"' if prefix else f' xmlns="{uri}"'


def _element(shape: Shape, tag: str) -> ElementWriter:
    """A writer of the whole `<tag>` element for a container shape."""
    attributes = _namespace_attribute(shape)
    key = (shape.name, tag, attributes)
    writer = _elements.get(key)
    if writer is not None:
        return writer
    if isinstance(shape, StructureShape):
        return _structure(shape, tag, attributes)
    if isinstance(shape, ListShape):
        writer = _flattened(shape, tag) if shape.serialization.get("flattened") \
            else _wrapped(shape, tag)
    elif isinstance(shape, MapShape):
        raise NotImplementedError(f"map {shape.name} in an S3 document")
    else:
        raise TypeError(shape.type_name)
    _elements[key] = writer
    return writer


# (kind, open tag, close tag, writer, one-item writer of a flattened list)
Entry = tuple[int, str, str, Any, Any]


def _entry(member: Shape, member_name: str) -> Entry:
    tag = _tag_of(member, member_name)
    if isinstance(member, ListShape) and member.serialization.get("flattened"):
        one = _item_writer(member.member, tag)
        return (MIXABLE, "", "", _flattened(member, tag), one)
    if isinstance(member, (StructureShape, ListShape, MapShape)):
        return (ELEMENT, "", "", _element(member, tag), None)
    scalar = _scalar(member)
    return (STRING if scalar is write_string else SCALAR, f"<{tag}>", f"</{tag}>", scalar, None)


def _structure(shape: StructureShape, tag: str, attributes: str,
               skip: set[str] | None = None) -> ElementWriter:
    table: dict[str, Entry] = {}
    lookup = table.get  # bound now; the table is filled below, before any call
    clean = CLEAN_STRINGS
    name = shape.name
    close = f"</{tag}>"
    # xmlAttribute members: (attribute name, writer), written into the open tag.
    attribute_members: dict[str, tuple[str, ScalarWriter]] = {}

    def write(out: Out, value: Any) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise WrongType(f"expected a dict for {name}, got {type(value).__name__}")
        append = out.append
        if attribute_members:
            extra = "".join(f' {attr}="{escape(text(value[m]))}"'
                            for m, (attr, text) in attribute_members.items()
                            if value.get(m) is not None)
            append(f"<{tag}{attributes}{extra}>")
        else:
            append(f"<{tag}{attributes}>")
        for key, item in value.items():
            if item is None:
                continue
            entry = lookup(key)
            if entry is None:
                raise WrongType(f"{key!r} is not a member of {name} "
                                f"(members: {', '.join(sorted(table))})")
            kind, open_tag, close_tag, writer, one = entry
            try:
                if kind == STRING and type(item) is str and (item in clean or is_clean(item)):
                    append(open_tag + item + close_tag)
                elif kind <= SCALAR:
                    append(open_tag + writer(item) + close_tag)
                elif kind == MIXABLE and type(item) is Mixed:
                    for member, inner in item:
                        mixed = lookup(member)
                        if mixed is None or mixed[0] != MIXABLE:
                            raise WrongType(f"{member!r} is not a flattened list of {name}")
                        mixed[4](out, inner)
                elif kind != ELSEWHERE:
                    writer(out, item)
            except WrongType as error:
                error.path.append(key)
                raise
        append(close)

    # Registered before the members are compiled, so a shape that contains itself resolves.
    _elements[(shape.name, tag, attributes)] = write
    for member_name, member in shape.members.items():
        if skip and member_name in skip:
            table[member_name] = (ELSEWHERE, "", "", None, None)
        elif member.serialization.get("xmlAttribute"):
            attribute_members[member_name] = (str(member.serialization["name"]), _scalar(member))
            table[member_name] = (ELSEWHERE, "", "", None, None)
        else:
            table[member_name] = _entry(member, member_name)
    return write


def _item_writer(shape: Shape, tag: str) -> ElementWriter:
    """A writer of one `<tag>` element for a list's item."""
    if isinstance(shape, (StructureShape, ListShape, MapShape)):
        element = _element(shape, tag)

        def container_item(out: Out, item: Any) -> None:
            if item is None:
                raise WrongType("None inside a list")
            element(out, item)
        return container_item
    scalar = _scalar(shape)
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"

    def scalar_item(out: Out, item: Any) -> None:
        if item is None:
            raise WrongType("None inside a list")
        out.append(open_tag + scalar(item) + close_tag)
    return scalar_item


def _check_sequence(value: Any, name: str) -> None:
    if type(value) is list or type(value) is Mixed:
        return
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise WrongType(f"expected a list for {name}, got {type(value).__name__}")


def _run(shape: ListShape, one: ElementWriter) -> ElementWriter:
    name = shape.name

    def write_items(out: Out, value: Any) -> None:
        _check_sequence(value, name)
        for index, item in enumerate(value):
            try:
                one(out, item)
            except WrongType as error:
                error.path.append(str(index))
                raise
    return write_items


def _flattened(shape: ListShape, tag: str) -> ElementWriter:
    return _run(shape, _item_writer(shape.member, tag))


def _wrapped(shape: ListShape, tag: str) -> ElementWriter:
    items = _run(shape, _item_writer(shape.member,
                                     str(shape.member.serialization.get("name") or "member")))
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"

    def write(out: Out, value: Any) -> None:
        out.append(open_tag)
        items(out, value)
        out.append(close_tag)
    return write
