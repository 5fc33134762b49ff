"""CreateTags, DeleteTags and DescribeTags, for every resource family registered in
clc/tagging.py. A resource must exist in the caller's account to be tagged or untagged."""

from __future__ import annotations

from typing import Any

from clc import tagging
from clc.api.query import apply_filters, exact_values, paged
from clc.api.registry import Context, action
from clc.models.resources import Tag
from services.errors import EC2Error


@action("CreateTags")
def create_tags(ctx: Context, Resources: list[str], Tags: list[dict[str, Any]]) -> None:
    # Everything is checked before anything is written: one bad id or tag changes nothing.
    tags = tagging.validated_tags(Tags)
    kinds = [(rid, tagging.resolve(ctx.db, ctx.account_id, rid)) for rid in Resources]
    for resource_id, kind in kinds:
        tagging.set_tags(ctx.db, ctx.account_id, resource_id, kind.resource_type, tags)
    ctx.trace("decided", f"tagged {len(kinds)} resource(s) with {sorted(tags)}")
    return None


def _deletion_rule(tag: dict[str, Any]) -> tuple[str, str | None]:
    key = tag.get("Key")
    if not key:
        raise EC2Error("InvalidParameterValue", "Tag key cannot be null or empty")
    # No Value: delete whatever the value is. Value "" deletes only a tag whose value is "".
    return str(key), (str(tag["Value"]) if "Value" in tag and tag["Value"] is not None else None)


@action("DeleteTags")
def delete_tags(ctx: Context, Resources: list[str], Tags: list[dict[str, Any]] | None = None) -> None:
    rules = [_deletion_rule(t) for t in Tags or []]
    for resource_id in Resources:
        tagging.resolve(ctx.db, ctx.account_id, resource_id)
    tagging.delete_tags(ctx.db, ctx.account_id, Resources, rules)
    return None


def _description(row: Tag) -> dict[str, str]:
    return {"ResourceId": row.resource_id, "ResourceType": row.resource_type, "Key": row.key,
            "Value": row.value}


@action("DescribeTags")
def describe_tags(ctx: Context, Filters: list[dict[str, Any]] | None = None,
                  MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    # A client asking for one resource's tags reads those rows only, not the account's.
    rows = tagging.account_tags(ctx.db, ctx.account_id, exact_values(Filters, "resource-id"))
    by_resource: dict[str, dict[str, str]] = {}
    for row in rows:
        by_resource.setdefault(row.resource_id, {})[row.key] = row.value
    rows = apply_filters(rows, Filters, {
        "key": lambda t: t.key, "value": lambda t: t.value,
        "resource-id": lambda t: t.resource_id, "resource-type": lambda t: t.resource_type,
    }, tags_of=lambda t: by_resource.get(t.resource_id, {}))
    return paged("Tags", rows, MaxResults, NextToken, lambda page: [_description(r) for r in page])
