"""S3's XML other than answers: request documents parsed without caring about the namespace,
the `<Error>` document, and the date formats S3 writes. Answers are written from botocore's
model by services/s3xml/writer.py."""

from __future__ import annotations

from datetime import datetime, timezone
from xml.etree import ElementTree as ET

from services.ec2query.scalars import escape, format_timestamp
from services.errors import AwsError, S3Error
from services.safexml import UnreadableXml, read_xml

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_XML_BODY = 1024 * 1024
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def timestamp(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, as S3 writes times in documents."""
    return format_timestamp(value)


def http_date(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%a, %d %b %Y %H:%M:%S GMT")


def error_xml(error: AwsError, resource: str, request_id: str) -> bytes:
    """S3's error document: Code, Message, the error's own fields, Resource, RequestId (no
    namespace, as S3 writes it)."""
    fields = [("Code", error.code), ("Message", error.message), *error.extra.items(),
              ("Resource", resource), ("RequestId", request_id)]
    inner = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in fields
                    if value is not None)
    return (XML_DECLARATION + "<Error>" + inner + "</Error>").encode("utf-8")


def malformed_xml(message: str = "The XML you provided was not well-formed or did not validate "
                  "against our published schema.") -> S3Error:
    return S3Error("MalformedXML", message)


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes, expected_root: str | None = None) -> ET.Element:
    """Parse a request document (through defusedxml: no DTD, no entities, in any encoding);
    any problem is S3's MalformedXML."""
    if len(body) > MAX_XML_BODY:
        raise malformed_xml("The XML you provided was too large.")
    try:
        root = read_xml(body)
    except UnreadableXml as exc:
        if exc.unsafe:
            raise malformed_xml("The XML you provided may not declare a DTD or entities.") \
                from None
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
