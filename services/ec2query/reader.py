"""EC2 Query requests to plain dicts: the inverse of botocore's EC2Serializer.

The flat pairs (`Filter.1.Value.2=x`) are split on dots into a tree, and the tree is walked
along the operation's input shape. Each shape is compiled once into a reader function; a
structure's reader knows the wire name of each of its members (queryName, else the
capitalised locationName, else the member name — PROTOCOL-NOTES §1)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from services.ec2query import model
from services.ec2query.scalars import READERS, read_boolean
from services.errors import EC2Error

LOG = logging.getLogger(__name__)

# Signature parameters (SigV2 in the body, SigV4 presigned in the query) are the auth layer's.
_AUTH_PARAMS = frozenset({"AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
                          "Timestamp", "Expires", "SecurityToken"})
# Clients number list items from 1, except libcloud's EC2 drivers, which number CreateTags'
# ResourceId.N and Tag.N from 0; EC2 (and Eucalyptus) take both and order by the number.
_INDEX = re.compile(r"0|[1-9][0-9]*")


@dataclass(slots=True)
class Ec2Request:
    """One parsed EC2 call. `params` is keyed by the model's member names, exactly the dict a
    boto3 caller passed (`{"Filters": [{"Name": ..., "Values": [...]}], "MaxResults": 5}`)."""

    action: str
    version: str
    params: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False


# A tree node: child segments to nodes, and under the key None the value sent for the node's
# own key, if any.
Node = dict[str | None, Any]
Reader = Callable[[Node, str], Any]


class _Absent:
    """Nothing usable was sent for a member (not even an empty string)."""


ABSENT = _Absent()


def parse_request(pairs: Sequence[tuple[str, str]]) -> Ec2Request:
    """Read every decoded query and form parameter of one call (blank values kept).

    Raises EC2Error: InvalidAction, MissingParameter or InvalidParameterValue."""
    action: str | None = None
    version: str | None = None
    tree: Node = {}
    for key, value in pairs:
        if key == "Action":
            action = value if action is None else action
        elif key == "Version":
            version = value if version is None else version
        elif key in _AUTH_PARAMS or key[:6].lower() == "x-amz-":
            continue
        else:
            _insert(tree, key, value)
    if not action:
        raise EC2Error("InvalidAction", "The request must contain the parameter Action.")
    if action not in model.operation_names():
        raise EC2Error("InvalidAction", f"The action {action} is not valid for this web service.")

    # DryRun is a request mode, not an argument, so it is taken out before the shape walk.
    dry_run = False
    dry_node = tree.pop("DryRun", None)
    if dry_node is not None and dry_node.get(None) is not None:
        dry_run = read_boolean(dry_node[None], "DryRun")

    params: dict[str, Any] = {}
    read = _operation_reader(action)
    if read is not None:
        parsed = read(tree, "")
        if parsed is not ABSENT:
            params = parsed
    elif tree:
        LOG.debug("%s takes no parameters; ignored %s", action, sorted(map(str, tree)))
    return Ec2Request(action=action, version=version or model.api_version(), params=params,
                      dry_run=dry_run)


def _insert(tree: Node, key: str, value: str) -> None:
    node = tree
    for segment in key.split("."):
        child = node.get(segment)
        if child is None:
            child = node[segment] = {}
        node = child
    # The first of two equal keys wins (a query parameter repeated in the form body).
    node.setdefault(None, value)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------------- compiled shape readers

# Every shape reader is built inside _by_operation's lock (see model.PerOperation).
_by_operation: model.PerOperation[Reader | None] = model.PerOperation()
_readers: dict[str, Reader] = {}


def preload_reader(action: str) -> None:
    """Compile the request reader of `action` now rather than inside its first request."""
    _operation_reader(action)


def _operation_reader(action: str) -> Reader | None:
    def build() -> Reader | None:
        shape = model.operation(action).input_shape
        return _reader_for(shape) if shape is not None else None
    return _by_operation.get(action, build)


def _reader_for(shape: Shape) -> Reader:
    reader = _readers.get(shape.name)
    if reader is None:
        reader = _compile(shape)
    return reader


def _compile(shape: Shape) -> Reader:
    if isinstance(shape, StructureShape):
        return _compile_structure(shape)
    if isinstance(shape, ListShape):
        reader = _compile_list(shape)
    elif isinstance(shape, MapShape):
        reader = _compile_map(shape)
    else:
        reader = _compile_scalar(shape)
    _readers[shape.name] = reader
    return reader


def wire_name(member: Shape, member_name: str) -> str:
    """The name EC2Serializer gives a member in a request."""
    serialization = member.serialization
    if "queryName" in serialization:
        return str(serialization["queryName"])
    name = serialization.get("name")
    if name:
        return name[0].upper() + name[1:]
    return member_name


def _compile_structure(shape: StructureShape) -> Reader:
    table: dict[str, tuple[str, Reader]] = {}
    required: list[tuple[str, str]] = []

    def read(node: Node, path: str) -> Any:
        result: dict[str, Any] = {}
        for wire, child in node.items():
            if wire is None:
                LOG.debug("ignored a plain value for structure %s", path)
                continue
            entry = table.get(wire)
            if entry is None:
                # The AWS CLI carries an older model than ours, and boto 2 an ancient one.
                LOG.debug("ignored unknown parameter %s", _join(path, wire))
                continue
            value = entry[1](child, _join(path, wire))
            if value is not ABSENT:
                result[entry[0]] = value
        for member_name, wire in required:
            if member_name not in result:
                raise EC2Error("MissingParameter",
                               f"The request must contain the parameter {_join(path, wire)}")
        return result if result else ABSENT

    # Registered before the members are compiled, so a shape that contains itself resolves.
    _readers[shape.name] = read
    for member_name, member in shape.members.items():
        table[wire_name(member, member_name)] = (member_name, _reader_for(member))
    for member_name in shape.required_members:
        required.append((member_name, wire_name(shape.members[member_name], member_name)))
    return read


def _indexed(node: Node, path: str) -> list[tuple[str, Node]]:
    """The numbered children of a list node, in numeric order, with their paths."""
    found: list[tuple[int, str, Node]] = []
    for key, child in node.items():
        if key is None:
            # `X=` is how the plain query protocol sends an empty list; EC2 clients do not.
            LOG.debug("ignored a plain value for list %s", path)
            continue
        if not _INDEX.fullmatch(key):
            raise EC2Error("InvalidParameterValue",
                           f"Invalid list index '{key}' in parameter {_join(path, key)}: "
                           "list items are numbered 0, 1, 2, ….")
        found.append((int(key), _join(path, key), child))
    found.sort(key=lambda entry: entry[0])
    return [(child_path, child) for _, child_path, child in found]


def _compile_list(shape: ListShape) -> Reader:
    read_member = _reader_for(shape.member)

    def read(node: Node, path: str) -> Any:
        # Gaps are normal: an empty structure in the middle of a list sends no keys at all.
        items = []
        for child_path, child in _indexed(node, path):
            value = read_member(child, child_path)
            if value is not ABSENT:
                items.append(value)
        return items if items else ABSENT

    return read


def _compile_map(shape: MapShape) -> Reader:
    # The EC2 model has no maps today; this follows QuerySerializer in case one appears:
    # Prefix.entry.N.key / Prefix.entry.N.value (no "entry" when flattened).
    key_wire = wire_name(shape.key, "key")
    value_wire = wire_name(shape.value, "value")
    flattened = bool(shape.serialization.get("flattened"))
    read_key = _reader_for(shape.key)
    read_value = _reader_for(shape.value)

    def read(node: Node, path: str) -> Any:
        if not flattened:
            node = node.get("entry", {})
            path = _join(path, "entry")
        result: dict[Any, Any] = {}
        for entry_path, entry in _indexed(node, path):
            key = read_key(entry.get(key_wire, {}), _join(entry_path, key_wire))
            if key is ABSENT:
                raise EC2Error("MissingParameter", "The request must contain the parameter "
                               f"{_join(entry_path, key_wire)}")
            value = read_value(entry.get(value_wire, {}), _join(entry_path, value_wire))
            if value is not ABSENT:
                result[key] = value
        return result if result else ABSENT

    return read


def _compile_scalar(shape: Shape) -> Reader:
    convert = READERS.get(shape.type_name)
    if convert is None:
        raise NotImplementedError(f"EC2 input shape {shape.name} of type {shape.type_name}")

    def read(node: Node, path: str) -> Any:
        text = node.get(None)
        if text is None:
            # Only sub-keys (`KeyName.1=x` for a plain string): nothing we can use.
            LOG.debug("ignored parameters under scalar %s", path)
            return ABSENT
        return convert(text, path)

    return read
