"""Object tags as S3 takes them: the Tagging document of PutObjectTagging, the URL-encoded
x-amz-tagging header of PUT, CreateMultipartUpload and CopyObject, and S3's limits on them.
A tag set is a list of [key, value] pairs in the order given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml

TagSet = list[list[str]]
MAX_TAGS = 10
MAX_KEY = 128
MAX_VALUE = 256


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidTag", message)


def check(tags: TagSet) -> TagSet:
    if len(tags) > MAX_TAGS:
        raise S3Error("BadRequest", "Object tags cannot be greater than 10")
    seen: set[str] = set()
    for key, value in tags:
        if not key or len(key) > MAX_KEY:
            raise _invalid("The TagKey you have provided is invalid")
        if len(value) > MAX_VALUE:
            raise _invalid("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise _invalid("Your TagKey cannot be prefixed with aws:")
        if key in seen:
            raise _invalid("Cannot provide multiple Tags with the same key")
        seen.add(key)
    return tags


def from_document(body: bytes) -> TagSet:
    root = parse_xml(body, "Tagging")
    sets = children(root, "TagSet")
    if len(sets) != 1:
        raise malformed_xml()
    tags: TagSet = []
    for tag in children(sets[0], "Tag"):
        key, value = child_text(tag, "Key"), child_text(tag, "Value")
        if key is None or value is None:
            raise malformed_xml()
        tags.append([key, value])
    return check(tags)


def from_header(headers: Mapping[str, str]) -> TagSet | None:
    """The tags of x-amz-tagging (`k1=v1&k2=v2`, URL-encoded); None when it is absent."""
    raw = headers.get("x-amz-tagging")
    if raw is None:
        return None
    pairs = parse_qsl(raw, keep_blank_values=True)
    if len({k for k, _ in pairs}) != len(pairs):
        raise S3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 "
                      "then URLEncoded URL query parameters without tag name duplicates.",
                      ArgumentName="x-amz-tagging", ArgumentValue=raw)
    return check([[k, v] for k, v in pairs])


def document(tags: TagSet) -> dict[str, Any]:
    """GetObjectTagging's result (botocore's member names)."""
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags]}


def count_header(tags: TagSet) -> dict[str, str]:
    return {"x-amz-tagging-count": str(len(tags))} if tags else {}
