"""Handler result dicts to EC2 response XML: what botocore's EC2QueryParser (and boto 2) read.

Each output shape is compiled once into a writer that appends text pieces to a list; element
names (locationName, else the member name), escaping and scalar formats are settled at
compile time, so rendering DescribeInstances over a thousand instances is one pass of appends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from services.ec2query import model
from services.ec2query.scalars import CLEAN_STRINGS, WRITERS, WrongType, escape, is_clean, write_string

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

Out = list[str]
# A compiled writer: (pieces, value) for containers; scalars are (value) -> text instead.
ContainerWriter = Callable[[Out, Any], None]
ScalarWriter = Callable[[Any], str]
# member name -> (kind, open tag, close tag, writer)
Entry = tuple[int, str, str, Any]
# Kinds of entry: a container writes into the pieces; a scalar returns its text; a string is a
# scalar whose common case (a plain str with nothing to escape) the structure writer handles
# inline, since strings are most of every answer.
CONTAINER, SCALAR, STRING = 0, 1, 2


class ShapeMismatch(ValueError):
    """A handler returned something its operation's output shape does not describe. This is a
    bug in the handler, so it is loud rather than silently dropped from the answer."""


def render_result(action: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
    """The XML body of a successful `action`: `<{action}Response xmlns=...>`, `<requestId>`,
    then `result` laid out by the output shape (or `<return>true</return>` when the operation
    has none). None values are left out; raises ShapeMismatch (a ValueError) on keys or types
    the shape does not have."""
    try:
        operation = model.operation(action)
    except KeyError:
        raise ShapeMismatch(f"{action} is not an EC2 operation") from None
    out: Out = [XML_DECLARATION, f'<{action}Response xmlns="{model.NAMESPACE}">',
                "<requestId>", escape(request_id), "</requestId>"]
    shape = operation.output_shape
    if shape is None:
        if result:
            raise ShapeMismatch(f"{action} has no output shape, yet the handler returned "
                                f"{sorted(result)}")
        out.append("<return>true</return>")
    elif result:
        try:
            _operation_writer(action, shape)(out, result)
        except WrongType as error:
            path = ".".join(reversed(error.path))
            raise ShapeMismatch(f"{action} result{'.' if path else ''}{path}: {error}") from None
    out.append(f"</{action}Response>")
    return "".join(out).encode("utf-8")


def render_error(code: str, message: str, request_id: str) -> bytes:
    """EC2's error document. Serve it with a status of 400 or more: botocore reads a 200 with
    this body as an empty success."""
    return (f"{XML_DECLARATION}<Response><Errors><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{escape(request_id)}</RequestID></Response>").encode("utf-8")


def element_name(member: Shape, member_name: str) -> str:
    """The tag EC2 gives a member in a response."""
    return str(member.serialization.get("name") or member_name)


# ---------------------------------------------------------------------- compiled shape writers

# Every shape writer is built inside _by_operation's lock (see model.PerOperation).
_by_operation: model.PerOperation[ContainerWriter] = model.PerOperation()
_containers: dict[str, ContainerWriter] = {}


def preload_writer(action: str) -> None:
    """Compile the response writer of `action` now rather than inside its first response."""
    shape = model.operation(action).output_shape
    if shape is not None:
        _operation_writer(action, shape)


def _operation_writer(action: str, shape: Shape) -> ContainerWriter:
    return _by_operation.get(action, lambda: _writer_for(shape))


def _writer_for(shape: Shape) -> ContainerWriter:
    writer = _containers.get(shape.name)
    if writer is None:
        writer = _compile_container(shape)
    return writer


def _entry(shape: Shape, tag: str) -> Entry:
    if isinstance(shape, (StructureShape, ListShape, MapShape)):
        return (CONTAINER, f"<{tag}>", f"</{tag}>", _writer_for(shape))
    scalar = WRITERS.get(shape.type_name)
    if scalar is None:
        raise NotImplementedError(f"EC2 output shape {shape.name} of type {shape.type_name}")
    return (STRING if scalar is write_string else SCALAR, f"<{tag}>", f"</{tag}>", scalar)


def _compile_container(shape: Shape) -> ContainerWriter:
    if isinstance(shape, StructureShape):
        return _compile_structure(shape)
    if isinstance(shape, ListShape):
        writer = _compile_list(shape)
    elif isinstance(shape, MapShape):
        writer = _compile_map(shape)
    else:
        raise TypeError(shape.type_name)
    _containers[shape.name] = writer
    return writer


def _compile_structure(shape: StructureShape) -> ContainerWriter:
    table: dict[str, Entry] = {}
    lookup = table.get  # bound now; the table is filled below, before any call
    clean = CLEAN_STRINGS
    name = shape.name

    def write(out: Out, value: Any) -> None:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise WrongType(f"expected a dict for {name}, got {type(value).__name__}")
        append = out.append
        for key, item in value.items():
            if item is None:
                continue
            entry = lookup(key)
            if entry is None:
                raise WrongType(f"{key!r} is not a member of {name} "
                                f"(members: {', '.join(sorted(table))})")
            kind, open_tag, close_tag, writer = entry
            try:
                if kind == STRING and type(item) is str and (item in clean or is_clean(item)):
                    append(open_tag + item + close_tag)
                elif kind:
                    append(open_tag + writer(item) + close_tag)
                else:
                    append(open_tag)
                    writer(out, item)
                    append(close_tag)
            except WrongType as error:
                error.path.append(key)
                raise

    # Registered before the members are compiled, so a shape that contains itself resolves.
    _containers[shape.name] = write
    for member_name, member in shape.members.items():
        table[member_name] = _entry(member, element_name(member, member_name))
    return write


def _check_sequence(value: Any, name: str) -> None:
    if type(value) is list:
        return
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise WrongType(f"expected a list for {name}, got {type(value).__name__}")


def _compile_list(shape: ListShape) -> ContainerWriter:
    # botocore ignores the child tag but boto 2 insists on <item>, so always <item>.
    kind, _, _, member_writer = _entry(shape.member, "item")
    scalar = kind != CONTAINER
    name = shape.name

    def write(out: Out, value: Any) -> None:
        _check_sequence(value, name)
        append = out.append
        for index, item in enumerate(value):
            try:
                if item is None:
                    raise WrongType("None inside a list")
                if scalar:
                    append("<item>" + member_writer(item) + "</item>")
                else:
                    # Each structure becomes one string as soon as it is written: a thousand
                    # instances would otherwise be ~100,000 small strings alive at once, and
                    # such peaks leave the allocator's arenas (the process's RSS) grown for good.
                    piece: Out = ["<item>"]
                    member_writer(piece, item)
                    piece.append("</item>")
                    append("".join(piece))
            except WrongType as error:
                error.path.append(str(index))
                raise

    return write


def _compile_map(shape: MapShape) -> ContainerWriter:
    # No EC2 output map exists today; this is what BaseXMLResponseParser._handle_map reads.
    key_tag = element_name(shape.key, "key")
    value_tag = element_name(shape.value, "value")
    key_entry = _entry(shape.key, key_tag)
    value_entry = _entry(shape.value, value_tag)
    if shape.serialization.get("flattened"):
        raise NotImplementedError(f"flattened map {shape.name} in EC2 output")

    def write(out: Out, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise WrongType(f"expected a dict for {shape.name}, got {type(value).__name__}")
        for key, item in value.items():
            if item is None:
                continue
            out.append("<entry>")
            for (kind, open_tag, close_tag, writer), part in ((key_entry, key),
                                                              (value_entry, item)):
                out.append(open_tag)
                if kind != CONTAINER:
                    out.append(writer(part))
                else:
                    writer(out, part)
                out.append(close_tag)
            out.append("</entry>")

    return write
