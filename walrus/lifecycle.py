"""Lifecycle configurations as S3 takes them: the LifecycleConfiguration document checked and
stored as rules, written back for GetBucketLifecycleConfiguration, and the questions a pass
over a bucket asks of them (which rule covers an object, when is it due).

A rule is stored as {"ID", "Status", "Filter": {"kind": "legacy"|"filter"|"and"|"none",
"Prefix", "Tags": [[k, v]], "ObjectSizeGreaterThan", "ObjectSizeLessThan"}, "Expiration":
{"Days"|"Date"|"ExpiredObjectDeleteMarker"}, "NoncurrentVersionExpiration": {"NoncurrentDays",
"NewerNoncurrentVersions"}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation"},
"Transition": [...], "NoncurrentVersionTransition": [...]} (absent parts left out)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree import ElementTree as ET

from services.errors import S3Error
from services.s3xml import child_text, children, malformed_xml, parse_xml

Rule = dict[str, Any]
MAX_RULES = 1000
STORAGE_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE",
                   "GLACIER_IR")


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidArgument", message)


def _positive(element: ET.Element, name: str) -> int | None:
    text = child_text(element, name)
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise _invalid(f"'{name}' for {local_name(element)} action must be a positive integer")
    return int(text)


def local_name(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _midnight(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("'Date' must be at midnight GMT") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        raise _invalid("'Date' must be at midnight GMT")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tags(element: ET.Element) -> list[list[str]]:
    return [[child_text(t, "Key") or "", child_text(t, "Value") or ""]
            for t in children(element, "Tag")]


def _size(element: ET.Element, name: str) -> int | None:
    text = child_text(element, name)
    if text is None:
        return None
    if not (text.isascii() and text.strip().isdigit()):
        raise malformed_xml()
    return int(text)


def _filter(rule: ET.Element) -> dict[str, Any]:
    legacy = child_text(rule, "Prefix")
    filters = children(rule, "Filter")
    if legacy is not None and filters:
        raise malformed_xml()
    if legacy is not None:
        return {"kind": "legacy", "Prefix": legacy, "Tags": []}
    if not filters:
        return {"kind": "none", "Prefix": "", "Tags": []}
    element = filters[0]
    ands = children(element, "And")
    parts = [n for n in ("Prefix", "Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan")
             if children(element, n)]
    if len(parts) > 1:
        raise malformed_xml()
    if ands:
        inner = ands[0]
        return {"kind": "and", "Prefix": child_text(inner, "Prefix") or "", "Tags": _tags(inner),
                "ObjectSizeGreaterThan": _size(inner, "ObjectSizeGreaterThan"),
                "ObjectSizeLessThan": _size(inner, "ObjectSizeLessThan")}
    return {"kind": "filter", "Prefix": child_text(element, "Prefix") or "",
            "Tags": _tags(element), "ObjectSizeGreaterThan": _size(element, "ObjectSizeGreaterThan"),
            "ObjectSizeLessThan": _size(element, "ObjectSizeLessThan"),
            "has_prefix": child_text(element, "Prefix") is not None}


def _transitions(rule: ET.Element, name: str, days: str) -> list[dict[str, Any]]:
    found = []
    for element in children(rule, name):
        storage = child_text(element, "StorageClass") or ""
        if storage not in STORAGE_CLASSES:
            raise _invalid("'StorageClass' must be different for 'Transition' actions in same "
                           "'Rule' with prefix" if not storage else
                           f"The storage class you specified is not valid: {storage}")
        item: dict[str, Any] = {"StorageClass": storage}
        count = _positive(element, days) if child_text(element, days) is not None else None
        if count is not None:
            item[days] = count
        elif child_text(element, "Date") is not None:
            item["Date"] = _midnight(child_text(element, "Date") or "")
        else:
            raise malformed_xml()
        found.append(item)
    return found


def from_document(body: bytes) -> list[Rule]:
    root = parse_xml(body, "LifecycleConfiguration")
    elements = children(root, "Rule")
    if not elements or len(elements) > MAX_RULES:
        raise malformed_xml()
    rules: list[Rule] = []
    ids: set[str] = set()
    for element in elements:
        status = child_text(element, "Status")
        if status not in ("Enabled", "Disabled"):
            raise malformed_xml()
        rule: Rule = {"ID": child_text(element, "ID"), "Status": status,
                      "Filter": _filter(element)}
        if rule["ID"] is not None:
            if len(rule["ID"]) > 255:
                raise _invalid("ID length should not exceed allowed limit of 255")
            if rule["ID"] in ids:
                raise _invalid("Rule ID must be unique. Found same ID for more than one rule")
            ids.add(rule["ID"])
        for expiration in children(element, "Expiration"):
            marker = child_text(expiration, "ExpiredObjectDeleteMarker")
            given = [n for n in ("Days", "Date", "ExpiredObjectDeleteMarker")
                     if child_text(expiration, n) is not None]
            if len(given) != 1:
                raise malformed_xml()
            if marker is not None:
                if rule["Filter"]["Tags"]:
                    raise _invalid("ExpiredObjectDeleteMarker cannot be specified with tags.")
                rule["Expiration"] = {"ExpiredObjectDeleteMarker": marker.strip() == "true"}
            elif given == ["Days"]:
                rule["Expiration"] = {"Days": _positive(expiration, "Days")}
            else:
                rule["Expiration"] = {"Date": _midnight(child_text(expiration, "Date") or "")}
        for noncurrent in children(element, "NoncurrentVersionExpiration"):
            days = _positive(noncurrent, "NoncurrentDays")
            if days is None:
                raise malformed_xml()
            item: dict[str, Any] = {"NoncurrentDays": days}
            newer = _positive(noncurrent, "NewerNoncurrentVersions")
            if newer is not None:
                item["NewerNoncurrentVersions"] = newer
            rule["NoncurrentVersionExpiration"] = item
        for abort in children(element, "AbortIncompleteMultipartUpload"):
            if rule["Filter"]["Tags"]:
                raise _invalid("AbortIncompleteMultipartUpload cannot be specified with tags.")
            days = _positive(abort, "DaysAfterInitiation")
            if days is None:
                raise malformed_xml()
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        transitions = _transitions(element, "Transition", "Days")
        if transitions:
            rule["Transition"] = transitions
        transitions = _transitions(element, "NoncurrentVersionTransition", "NoncurrentDays")
        if transitions:
            rule["NoncurrentVersionTransition"] = transitions
        if not any(a in rule for a in ("Expiration", "NoncurrentVersionExpiration",
                                       "AbortIncompleteMultipartUpload", "Transition",
                                       "NoncurrentVersionTransition")):
            raise _invalid("At least one action needs to be specified in a rule")
        rules.append(rule)
    return rules


def _filter_document(found: dict[str, Any]) -> dict[str, Any] | None:
    tags = [{"Key": k, "Value": v} for k, v in found["Tags"]]
    if found["kind"] == "and":
        return {"And": {"Prefix": found["Prefix"] or None, "Tags": tags,
                        "ObjectSizeGreaterThan": found.get("ObjectSizeGreaterThan"),
                        "ObjectSizeLessThan": found.get("ObjectSizeLessThan")}}
    if found["kind"] == "filter":
        return {"Prefix": found["Prefix"] if found.get("has_prefix") else None,
                "Tag": tags[0] if tags else None,
                "ObjectSizeGreaterThan": found.get("ObjectSizeGreaterThan"),
                "ObjectSizeLessThan": found.get("ObjectSizeLessThan")}
    return None


def document(rules: list[Rule]) -> dict[str, Any]:
    """GetBucketLifecycleConfiguration's result (botocore's member names)."""
    items = []
    for rule in rules:
        found = rule["Filter"]
        item: dict[str, Any] = {"Expiration": rule.get("Expiration"), "ID": rule["ID"]}
        if found["kind"] == "legacy":
            item["Prefix"] = found["Prefix"]
        elif found["kind"] != "none":
            item["Filter"] = _filter_document(found)
        item["Status"] = rule["Status"]
        item["Transitions"] = rule.get("Transition", [])
        item["NoncurrentVersionTransitions"] = rule.get("NoncurrentVersionTransition", [])
        item["NoncurrentVersionExpiration"] = rule.get("NoncurrentVersionExpiration")
        item["AbortIncompleteMultipartUpload"] = rule.get("AbortIncompleteMultipartUpload")
        items.append(item)
    return {"Rules": items}


# ---- what a pass asks of the rules ---------------------------------------------------------

def covers(rule: Rule, key: str, size: int, tags: list[list[str]]) -> bool:
    found = rule["Filter"]
    if not key.startswith(found["Prefix"] or ""):
        return False
    owned = {k: v for k, v in tags}
    if any(owned.get(k) != v for k, v in found["Tags"]):
        return False
    greater, less = found.get("ObjectSizeGreaterThan"), found.get("ObjectSizeLessThan")
    return not ((greater is not None and size <= greater) or (less is not None and size >= less))


def due(start: datetime, days: int) -> datetime:
    """When something `days` days after `start` is acted on: S3 counts from `start` and rounds
    up to the next midnight UTC."""
    moment = start + timedelta(days=days)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def expiration_due(rule: Rule, last_modified: datetime, now: datetime) -> bool:
    expiration = rule.get("Expiration", {})
    if "Days" in expiration:
        return due(last_modified, expiration["Days"]) <= now
    if "Date" in expiration:
        return datetime.fromisoformat(expiration["Date"].replace(".000Z", "")) <= now
    return False
