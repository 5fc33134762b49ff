"""Walrus's persistence: every query of buckets, objects, uploads and parts lives here, so the
S3 operations read as behaviour."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, bindparam, delete, select, tuple_
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.instrumentation import manager_of_class

from walrus.models import Bucket, Object, Part, Upload


def successor(text: str) -> str | None:
    """The smallest string greater than every string that starts with `text`, in UTF-8 byte
    (= code point) order; None when there is none."""
    while text:
        code = ord(text[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored as UTF-8
            code = 0xE000
        if code <= 0x10FFFF:
            return text[:-1] + chr(code)
        text = text[:-1]
    return None


def _under(query: Select[Any], column: Any, prefix: str) -> Select[Any]:
    """`query` limited to rows whose `column` starts with `prefix`, as a range the index serves."""
    if not prefix:
        return query
    query = query.where(column >= prefix)
    upper = successor(prefix)
    return query.where(column < upper) if upper is not None else query


def get_bucket(db: Session, name: str) -> Bucket | None:
    return db.get(Bucket, name)


def buckets_of(db: Session, owner_id: str) -> Sequence[Bucket]:
    return db.scalars(select(Bucket).where(Bucket.owner_id == owner_id).order_by(Bucket.name)).all()


def bucket_is_empty(db: Session, name: str) -> bool:
    return db.scalar(select(Object.key).where(Object.bucket == name).limit(1)) is None


def get_object(db: Session, bucket: str, key: str) -> Object | None:
    return db.get(Object, (bucket, key))


_OBJECTS = Object.__table__
_OBJECT_ROW = select(_OBJECTS).where(
    (_OBJECTS.c.bucket == bindparam("b")) & (_OBJECTS.c.key == bindparam("k")))
_OBJECT_MANAGER = manager_of_class(Object)
_READERS: weakref.WeakKeyDictionary[Engine, ObjectReader] = weakref.WeakKeyDictionary()


def _detached(values: dict[str, Any]) -> Object:
    """An Object holding `values` as loaded state, as the ORM's own loading fills one:
    `Object(**values)` fires an attribute event per column, which cost a third of a GET's
    read."""
    obj: Object = _OBJECT_MANAGER.new_instance()
    obj.__dict__.update(values)
    return obj


def read_object(engine: Engine, bucket: str, key: str) -> Object | None:
    """The current version of the object as a detached row, for reading only (GET, HEAD)."""
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = ObjectReader(engine)
    return reader.read(bucket, key)


class ObjectReader:
    """The read of `read_object` on the driver's own cursor: the statement compiled once for
    the engine's dialect, each column decoded by the processor SQLAlchemy itself would use.
    Core's per-statement machinery (execution context, result object, row mapping) cost more
    than SQLite's work for the row."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = _OBJECT_ROW.compile(dialect=dialect)
        self._engine = engine
        self._sql = str(compiled)
        self._positional = compiled.positiontup
        self._names = [column.key for column in _OBJECTS.columns]
        self._decoders = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                          for column in _OBJECTS.columns]

    def read(self, bucket: str, key: str) -> Object | None:
        given = {"b": bucket, "k": key}
        params: Any = [given[name] for name in self._positional] if self._positional \
            else given
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self._sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool, which ends the read transaction
        if row is None:
            return None
        return _detached({name: value if decode is None else decode(value)
                          for name, decode, value in zip(self._names, self._decoders, row)})


_KEY = tuple_(_OBJECTS.c.bucket, _OBJECTS.c.key)
_SEGMENTS_OF = select(_OBJECTS.c.bucket, _OBJECTS.c.key, _OBJECTS.c.segments).where(
    _KEY.in_(bindparam("keys", expanding=True)))
_DELETE_OBJECTS = _OBJECTS.delete().where(_KEY.in_(bindparam("keys", expanding=True)))


def object_values(row: Object) -> dict[str, Any]:
    """An object row as the column values `replace_objects` takes."""
    return {c.key: getattr(row, c.key) for c in _OBJECTS.columns}


def replace_objects(db: Session, changes: Sequence[tuple[dict[str, Any], bool]]) -> list[list[list[Any]] | None]:
    """Store each (column values, if_absent) in order, each replacing the object of its key;
    returns, per change, the segments it replaced ([] when there was none), or None for an
    `if_absent` change whose key exists (it is left alone).

    A whole group costs three statements, however many objects (and a key may come twice: the
    later change replaces the earlier). Table-level statements: a PUT is the hottest write
    path, and each statement in a busy process costs more than the ORM's unit of work saves."""
    keys = list(dict.fromkeys((values["bucket"], values["key"]) for values, _ in changes))
    current: dict[tuple[str, str], list[list[Any]]] = {
        (b, k): list(segments) for b, k, segments in db.execute(_SEGMENTS_OF, {"keys": keys})}
    existed = list(current)
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    results: list[list[list[Any]] | None] = []
    for values, if_absent in changes:
        key = (values["bucket"], values["key"])
        if if_absent and key in current:
            results.append(None)
            continue
        results.append(current.get(key, []))
        current[key] = values["segments"]
        stored[key] = values
    if existed and stored:
        db.execute(_DELETE_OBJECTS, {"keys": [k for k in existed if k in stored]})
    if stored:
        db.execute(_OBJECTS.insert(), list(stored.values()))
    return results


def scan_objects(db: Session, bucket: str, prefix: str, start: str | None, inclusive: bool,
                 limit: int, markers: bool = False) -> Sequence[Object]:
    """Up to `limit` objects of `bucket` under `prefix` from `start` on, in key order; the index
    on (bucket, key) makes each call cost `limit` rows however large the bucket is. Keys whose
    current version is a delete marker are left out, unless `markers`."""
    query = select(Object).where(Object.bucket == bucket)
    if not markers:
        query = query.where(Object.delete_marker.is_(False))
    if start is not None:
        query = query.where(Object.key >= start if inclusive else Object.key > start)
    query = _under(query, Object.key, prefix)
    # A listing never reads bodies, metadata or ACLs: skip decoding those JSON columns.
    query = query.options(load_only(Object.key, Object.size, Object.etag, Object.last_modified,
                                    Object.owner_id, Object.owner_name, Object.checksums,
                                    Object.version_id, Object.delete_marker, Object.storage_class))
    return db.scalars(query.order_by(Object.key).limit(limit)).all()


def get_upload(db: Session, upload_id: str) -> Upload | None:
    return db.get(Upload, upload_id)


def uploads_of(db: Session, bucket: str, prefix: str, key_marker: str,
               upload_id_marker: str, limit: int) -> Sequence[Upload]:
    query = _under(select(Upload).where(Upload.bucket == bucket), Upload.key, prefix)
    if key_marker:
        if upload_id_marker:
            query = query.where((Upload.key > key_marker)
                                | ((Upload.key == key_marker) & (Upload.upload_id > upload_id_marker)))
        else:
            query = query.where(Upload.key > key_marker)
    return db.scalars(query.order_by(Upload.key, Upload.initiated, Upload.upload_id).limit(limit)).all()


def parts_of(db: Session, upload_id: str, after: int = 0, limit: int | None = None) -> Sequence[Part]:
    query = (select(Part).where(Part.upload_id == upload_id, Part.part_number > after)
             .order_by(Part.part_number))
    if limit is not None:
        query = query.limit(limit)
    return db.scalars(query).all()


def get_part(db: Session, upload_id: str, number: int) -> Part | None:
    return db.get(Part, (upload_id, number))


def blobs_of_uploads(db: Session, bucket: str) -> list[str]:
    ids = select(Upload.upload_id).where(Upload.bucket == bucket)
    # and the blob of each upload on its cluster's own (deleting it aborts that upload)
    own = select(Upload.blob_id).where(Upload.bucket == bucket, Upload.blob_id.is_not(None))
    return list(db.scalars(select(Part.blob_id).where(Part.upload_id.in_(ids)))) + \
        [str(b) for b in db.scalars(own)]


def delete_upload(db: Session, upload_id: str) -> None:
    db.execute(delete(Part).where(Part.upload_id == upload_id))
    db.execute(delete(Upload).where(Upload.upload_id == upload_id))


def delete_bucket(db: Session, name: str) -> None:
    ids = select(Upload.upload_id).where(Upload.bucket == name)
    db.execute(delete(Part).where(Part.upload_id.in_(ids)))
    db.execute(delete(Upload).where(Upload.bucket == name))
    db.execute(delete(Bucket).where(Bucket.name == name))


def segment_blobs(segments: Sequence[Sequence[object]]) -> list[str]:
    return [str(s[0]) for s in segments]
