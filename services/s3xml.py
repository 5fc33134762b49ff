"""S3's XML: documents built from plain dicts, request bodies parsed without caring about the
namespace, and the `<Error>` document.

Building rules (RestXMLParser's view of S3): a dict is an element's children in order; a list
repeats the element under the same tag (S3's lists are flattened: `Contents`, `CommonPrefixes`,
`Part`…; wrappers such as `<Buckets><Bucket>` are written as a dict holding a list); None is
left out; booleans are `true`/`false`; datetimes are ISO 8601 UTC with milliseconds and `Z`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

from services.errors import AwsError, S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_XML_BODY = 1024 * 1024


def timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def http_date(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp(value)
    return str(value)


class Interleaved(list[tuple[str, Any]]):
    """Elements of different tags in one given order ((tag, value) pairs), where S3 mixes two
    flattened lists (ListObjectVersions' Version and DeleteMarker); its own key is not written."""


def _fill(parent: ET.Element, tag: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Interleaved):
        for inner_tag, inner in value:
            _fill(parent, inner_tag, inner)
        return
    if isinstance(value, list):
        for item in value:
            _fill(parent, tag, item)
        return
    if tag.startswith("@"):
        parent.set(tag[1:], _text(value))
        return
    child = ET.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for name, item in value.items():
            _fill(child, name, item)
    else:
        child.text = _text(value)


def to_xml(root: str, body: Mapping[str, Any], namespace: str | None = S3_NS) -> bytes:
    element = ET.Element(root)
    if namespace:
        element.set("xmlns", namespace)
    for name, value in body.items():
        _fill(element, name, value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8")


def error_xml(error: AwsError, resource: str, request_id: str) -> bytes:
    body: dict[str, Any] = {"Code": error.code, "Message": error.message}
    body.update(error.extra)
    body["Resource"] = resource
    body["RequestId"] = request_id
    return to_xml("Error", body, namespace=None)


def malformed_xml(message: str = "The XML you provided was not well-formed or did not validate "
                  "against our published schema.") -> S3Error:
    return S3Error("MalformedXML", message)


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes, expected_root: str | None = None) -> ET.Element:
    """Parse a request document; any problem is S3's MalformedXML."""
    if len(body) > MAX_XML_BODY:
        raise malformed_xml("The XML you provided was too large.")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # No entity expansion from clients.
        raise malformed_xml("The XML you provided may not declare entities.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise malformed_xml() from None
    if expected_root is not None and local(root.tag) != expected_root:
        raise malformed_xml(f"Expected a {expected_root} document.")
    return root


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local(c.tag) == name]


def child_text(element: ET.Element, name: str, default: str | None = None) -> str | None:
    for child in element:
        if local(child.tag) == name:
            return child.text or ""
    return default
