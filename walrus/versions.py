"""Object versions as S3 keeps them, in the database.

A key's current version is its row in `objects` (an object, or a delete marker); its older
versions are rows in `object_versions`, ordered by `seq`. A key has older versions only while
it has a current one: deleting the current version by id promotes the newest older one. So
GET, HEAD and listings read `objects` alone, whatever the bucket's history.

Every function here runs inside one write transaction (`S3Context.writing`) and returns the
blob ids that no row names any more; the caller deletes those files only after the commit, so
a refused or failed request leaves every stored body where it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import clock
from walrus.models import Object, ObjectVersion

ENABLED = "Enabled"
SUSPENDED = "Suspended"
NULL = "null"

_CURRENT = Object.__table__
_OLDER = ObjectVersion.__table__
_COLUMNS = [c.key for c in _CURRENT.columns]

# Either kind of row: both carry every column of ObjectColumns.
Version = Object | ObjectVersion


def new_version_id() -> str:
    return uuid.uuid4().hex


def _blobs(segments: Sequence[Sequence[object]]) -> list[str]:
    return [str(s[0]) for s in segments]


def _current(db: Session, bucket: str, key: str) -> Object | None:
    return db.get(Object, (bucket, key))


def _older(db: Session, bucket: str, key: str, version_id: str) -> ObjectVersion | None:
    # by columns, not db.get: the mapped primary key's order is not the table's
    return db.scalars(select(ObjectVersion).where(
        ObjectVersion.bucket == bucket, ObjectVersion.key == key,
        ObjectVersion.version_id == version_id)).first()


def _values(row: Version) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _COLUMNS}


def _retire(db: Session, row: Object) -> None:
    """Make the current version `row` the newest older version of its key."""
    top = db.scalar(select(func.max(ObjectVersion.seq))
                    .where(ObjectVersion.bucket == row.bucket, ObjectVersion.key == row.key))
    db.execute(_OLDER.insert(), [{**_values(row), "seq": (top or 0) + 1,
                                  "noncurrent_since": clock.utcnow()}])


def _drop_older_null(db: Session, bucket: str, key: str) -> list[str]:
    """A key has one "null" version at most: a new one replaces an older one."""
    old = _older(db, bucket, key, NULL)
    if old is None:
        return []
    db.delete(old)
    db.flush()
    return _blobs(old.segments)


def write(db: Session, values: dict[str, Any], mode: str | None, if_absent: bool = False,
          check: Callable[[Object | None], None] | None = None) -> list[str] | None:
    """Store `values` (every column of an object; `version_id` is set here) as the current
    version of its key in a bucket whose versioning is `mode` (Enabled, Suspended, or None for
    a bucket never versioned). The current version it replaces becomes an older one, except a
    "null" one replaced by another "null" one. Returns the freed blob ids; None, changing
    nothing, when `if_absent` and the key has a current object (a delete marker does not
    count: the key reads as absent). `check` sees the current version first, inside the
    transaction, and may refuse the write by raising (a conditional write)."""
    bucket, key = values["bucket"], values["key"]
    current = _current(db, bucket, key)
    if check is not None:
        check(current)
    if if_absent and current is not None and not current.delete_marker:
        return None
    freed: list[str] = []
    if mode is None:
        values["version_id"] = NULL
    elif mode == SUSPENDED:
        values["version_id"] = NULL
        freed += _drop_older_null(db, bucket, key)
    else:
        values["version_id"] = new_version_id()
    if current is not None:
        if mode is None or (mode == SUSPENDED and current.version_id == NULL):
            freed += _blobs(current.segments)
        else:
            _retire(db, current)
        db.delete(current)
        db.flush()
    db.execute(_CURRENT.insert(), [values])
    return freed


def delete_marker_values(bucket: str, key: str, owner: tuple[str, str],
                         when: datetime | None = None) -> dict[str, Any]:
    return {"bucket": bucket, "key": key, "version_id": NULL, "delete_marker": True, "size": 0,
            "etag": "", "last_modified": when or clock.utcnow(), "content_type": "", "meta": {},
            "checksums": {}, "segments": [], "parts_count": None, "owner_id": owner[0],
            "owner_name": owner[1], "acl": [], "tags": [], "storage_class": "STANDARD"}


def add_delete_marker(db: Session, bucket: str, key: str, mode: str,
                      owner: tuple[str, str]) -> tuple[str, list[str]]:
    """DELETE without a version id in a versioned bucket: a delete marker becomes current.
    Returns its version id and the freed blob ids."""
    values = delete_marker_values(bucket, key, owner)
    freed = write(db, values, mode)
    assert freed is not None
    return values["version_id"], freed


def remove(db: Session, bucket: str, key: str, version_id: str) -> tuple[Version | None, list[str]]:
    """DELETE with a version id: that version is gone for good (if it exists). Removing the
    current version makes the newest older one current. Returns the removed row (None when
    there was none) and the freed blob ids."""
    current = _current(db, bucket, key)
    if current is not None and current.version_id == version_id:
        db.delete(current)
        db.flush()
        _promote_newest(db, bucket, key)
        return current, _blobs(current.segments)
    older = _older(db, bucket, key, version_id)
    if older is None:
        return None, []
    db.delete(older)
    db.flush()
    return older, _blobs(older.segments)


def _promote_newest(db: Session, bucket: str, key: str) -> None:
    newest = db.scalars(select(ObjectVersion)
                        .where(ObjectVersion.bucket == bucket, ObjectVersion.key == key)
                        .order_by(ObjectVersion.seq.desc()).limit(1)).first()
    if newest is None:
        return
    values = _values(newest)
    db.delete(newest)
    db.flush()
    db.execute(_CURRENT.insert(), [values])


def find(db: Session, bucket: str, key: str, version_id: str) -> Version | None:
    """The version `version_id` of a key, current or older, detached from the session."""
    current = _current(db, bucket, key)
    row: Version | None
    if current is not None and current.version_id == version_id:
        row = current
    else:
        row = _older(db, bucket, key, version_id)
    if row is not None:
        db.expunge(row)
    return row


def older_versions(db: Session, bucket: str, key: str, below: int | None,
                   limit: int) -> Sequence[ObjectVersion]:
    """Up to `limit` older versions of a key, newest first, those with seq below `below`."""
    query = select(ObjectVersion).where(ObjectVersion.bucket == bucket, ObjectVersion.key == key)
    if below is not None:
        query = query.where(ObjectVersion.seq < below)
    return db.scalars(query.order_by(ObjectVersion.seq.desc()).limit(limit)).all()


def seq_of(db: Session, bucket: str, key: str, version_id: str) -> int | None:
    return db.scalar(select(ObjectVersion.seq).where(
        ObjectVersion.bucket == bucket, ObjectVersion.key == key,
        ObjectVersion.version_id == version_id))


def update(db: Session, bucket: str, key: str, version_id: str, **changes: Any) -> bool:
    """Change columns (acl, tags) of one version, current or older; False if it is not there."""
    row: Version | None = _current(db, bucket, key)
    if row is None or row.version_id != version_id:
        row = _older(db, bucket, key, version_id)
    if row is None:
        return False
    for name, value in changes.items():
        setattr(row, name, value)
    return True
