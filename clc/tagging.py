"""Tags, shared by every resource family: which resource an id names (a table of id prefixes
each family registers), tag validation, tags given at creation (TagSpecifications), and the
`tags_of` lookups the Describe actions hand to `apply_filters`.

A family registers itself once, at import:

    register_resource("sg", "security-group", exists=account_row_exists(SecurityGroup),
                      not_found=lambda rid: EC2Error("InvalidGroup.NotFound", ...))

Instances (`i-`), volumes (`vol-`), snapshots (`snap-`) and images (`emi-`) do the same when
they arrive; CreateTags/DeleteTags/DescribeTags then work for them unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from clc.models.resources import Tag
from services.errors import EC2Error

MAX_TAGS_PER_RESOURCE = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256

Exists = Callable[[Session, str, str], bool]  # (db, account_id, resource_id) -> bool


@dataclass(frozen=True)
class ResourceKind:
    prefix: str
    resource_type: str  # EC2's name in DescribeTags and TagSpecifications: "security-group"
    exists: Exists
    not_found: Callable[[str], EC2Error]


_KINDS: dict[str, ResourceKind] = {}


def register_resource(prefix: str, resource_type: str, exists: Exists,
                      not_found: Callable[[str], EC2Error]) -> None:
    """Make ids `<prefix>-…` taggable. Registering the same prefix twice is a bug."""
    if prefix in _KINDS:
        raise RuntimeError(f"resource prefix {prefix!r} registered twice")
    _KINDS[prefix] = ResourceKind(prefix, resource_type, exists, not_found)


def account_row_exists(model: Any) -> Exists:
    """`exists` for a family whose table has `id` and `account_id` columns."""
    def exists(db: Session, account_id: str, resource_id: str) -> bool:
        return db.scalar(select(model.id).where(model.account_id == account_id,
                                                model.id == resource_id)) is not None
    return exists


def kind_of(resource_id: str) -> ResourceKind:
    """The family an id belongs to, by its prefix; `InvalidID` when none claims it."""
    prefix, dash, rest = resource_id.partition("-")
    kind = _KINDS.get(prefix) if dash and rest else None
    if kind is None:
        raise EC2Error("InvalidID", f"The ID '{resource_id}' is not valid")
    return kind


def resolve(db: Session, account_id: str, resource_id: str) -> ResourceKind:
    """The kind of an existing resource of `account_id`, else that family's NotFound error
    (another account's resource is reported exactly like a missing one)."""
    kind = kind_of(resource_id)
    if not kind.exists(db, account_id, resource_id):
        raise kind.not_found(resource_id)
    return kind


def resource_types() -> frozenset[str]:
    return frozenset(kind.resource_type for kind in _KINDS.values())


# ---------------------------------------------------------------------- validation

def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    if key is None or key == "":
        raise EC2Error("InvalidParameterValue", "Tag key cannot be null or empty")
    key, value = str(key), "" if value is None else str(value)
    if len(key) > MAX_KEY_LENGTH:
        raise EC2Error("InvalidParameterValue",
                       f"Tag key exceeds the maximum length of {MAX_KEY_LENGTH} characters")
    if len(value) > MAX_VALUE_LENGTH:
        raise EC2Error("InvalidParameterValue",
                       f"Tag value exceeds the maximum length of {MAX_VALUE_LENGTH} characters")
    if key.lower().startswith("aws:"):
        raise EC2Error("InvalidParameterValue",
                       "Tag keys starting with 'aws:' are reserved for internal use")
    return key, value


def validated_tags(tags: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    """Key -> value of a request's Tags list (a later duplicate key wins, as in EC2)."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key, value = validate_tag(tag.get("Key"), tag.get("Value"))
        result[key] = value
    return result


# ---------------------------------------------------------------------- writing

def set_tags(db: Session, account_id: str, resource_id: str, resource_type: str,
             tags: dict[str, str]) -> None:
    """Create or overwrite `tags` on one resource, keeping the 50-tag limit."""
    if not tags:
        return
    existing = {t.key: t for t in db.scalars(select(Tag).where(
        Tag.account_id == account_id, Tag.resource_id == resource_id))}
    added = [k for k in tags if k not in existing]
    if len(existing) + len(added) > MAX_TAGS_PER_RESOURCE:
        raise EC2Error("TagLimitExceeded",
                       f"The maximum number of Tags for a resource has been reached "
                       f"({MAX_TAGS_PER_RESOURCE}) for resource '{resource_id}'.")
    for key, value in tags.items():
        row = existing.get(key)
        if row is None:
            # An upsert: a concurrent CreateTags may add the same key between the read above
            # and this write; then its value is overwritten, as a later CreateTags would.
            db.execute(_insert(db)(Tag).values(
                account_id=account_id, resource_id=resource_id, resource_type=resource_type,
                key=key, value=value).on_conflict_do_update(
                index_elements=[Tag.account_id, Tag.resource_id, Tag.key], set_={"value": value}))
        else:
            row.value = value


def _insert(db: Session) -> Any:
    """INSERT … ON CONFLICT in the session's own dialect (SQLite and PostgreSQL spell it alike)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def delete_tags(db: Session, account_id: str, resource_ids: Sequence[str],
                rules: Sequence[tuple[str, str | None]]) -> None:
    """DeleteTags' effect: each rule is (key, value or None for any value); no rules at all
    deletes every tag of the resources, as EC2 does."""
    rows = db.scalars(select(Tag).where(Tag.account_id == account_id,
                                        Tag.resource_id.in_(list(resource_ids))))
    for row in rows:
        if not rules or any(row.key == key and (value is None or row.value == value)
                            for key, value in rules):
            db.delete(row)


def delete_all_tags(db: Session, account_id: str, resource_id: str) -> None:
    """Forget a deleted resource's tags."""
    db.execute(delete(Tag).where(Tag.account_id == account_id, Tag.resource_id == resource_id))


def apply_tag_specifications(db: Session, account_id: str, specs: Sequence[dict[str, Any]] | None,
                             resource_type: str, resource_id: str) -> list[dict[str, str]]:
    """Tag a resource being created with the request's TagSpecifications; returns the tags as
    the output shape's `Tags` list. A specification for another resource type is refused, as
    EC2 refuses it."""
    tags: dict[str, str] = {}
    for spec in specs or []:
        given = spec.get("ResourceType")
        if given != resource_type:
            raise EC2Error("InvalidParameterValue",
                           f"'{given}' is not a valid taggable resource type for this operation.")
        tags.update(validated_tags(spec.get("Tags")))
    if len(tags) > MAX_TAGS_PER_RESOURCE:
        raise EC2Error("TagLimitExceeded",
                       "The maximum number of Tags for a resource has been reached "
                       f"({MAX_TAGS_PER_RESOURCE}).")
    set_tags(db, account_id, resource_id, resource_type, tags)
    return tag_list(tags)


# ---------------------------------------------------------------------- reading

def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags as the output shapes' `Tags` members (sorted by key, so answers are stable)."""
    return [{"Key": k, "Value": tags[k]} for k in sorted(tags)]


def account_tags(db: Session, account_id: str, resource_ids: list[str] | None = None) -> list[Tag]:
    """Every tag of the account (of those resources only, when named), by resource and key."""
    query = select(Tag).where(Tag.account_id == account_id)
    if resource_ids is not None:
        query = query.where(Tag.resource_id.in_(resource_ids))
    return list(db.scalars(query.order_by(Tag.resource_id, Tag.key)))


# The common case (a Describe of a few resources by id) built once: making and keying a
# select costs more than running it.
_TAGS_OF_IDS = (select(Tag.resource_id, Tag.key, Tag.value)
                .where(Tag.account_id == bindparam("account"), Tag.resource_type == bindparam("type"),
                       Tag.resource_id.in_(bindparam("ids", expanding=True))))


def tags_by_resource(db: Session, account_id: str, resource_type: str | None = None,
                     resource_ids: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """resource id -> {key: value}, in one query. Describe actions build their `tags_of` on it:
    `tags = tags_by_resource(db, acct, "key-pair"); tags_of = lambda k: tags.get(k.id, {})`."""
    if resource_type is not None and resource_ids is not None:
        ids = list(resource_ids)
        rows = db.connection().execute(_TAGS_OF_IDS, {"account": account_id, "type": resource_type,
                                                      "ids": ids}) if ids else ()
        result: dict[str, dict[str, str]] = {}
        for resource_id, key, value in rows:
            result.setdefault(resource_id, {})[key] = value
        return result
    query = select(Tag.resource_id, Tag.key, Tag.value).where(Tag.account_id == account_id)
    if resource_type is not None:
        query = query.where(Tag.resource_type == resource_type)
    if resource_ids is not None:
        ids = list(resource_ids)
        if not ids:
            return {}
        query = query.where(Tag.resource_id.in_(ids))
    result = {}
    for resource_id, key, value in db.execute(query):
        result.setdefault(resource_id, {})[key] = value
    return result

