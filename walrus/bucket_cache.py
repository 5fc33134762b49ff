"""Bucket rows kept in memory: every S3 request reads its bucket, few requests change one.
Walrus is the only writer of its database (one Walrus per cloud), and every change of a bucket
goes through `forget`, so the cache never serves a stale row."""

from __future__ import annotations

import threading

from services.db import Database
from walrus import catalog
from walrus.models import Bucket


class BucketCache:
    def __init__(self, db: Database, size: int = 10000) -> None:
        self._db = db
        self._size = size
        self._rows: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def cached(self, name: str) -> Bucket | None:
        """The row if memory has it; never touches the database (safe on the event loop)."""
        with self._lock:
            return self._rows.get(name)

    def get(self, name: str) -> Bucket | None:
        row = self.cached(name)
        if row is not None:
            return row
        with self._db.session() as db:
            row = catalog.get_bucket(db, name)
            if row is not None:
                db.expunge(row)
        if row is not None:
            with self._lock:
                if len(self._rows) >= self._size:
                    self._rows.clear()
                self._rows[name] = row
        return row

    def forget(self, name: str) -> None:
        with self._lock:
            self._rows.pop(name, None)
