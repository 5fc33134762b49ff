"""Small blobs kept in memory, for a blob store whose every read is a request to another
server (walrus/s3_blobs.py): a 1 KiB GET through Walrus is otherwise two whole request
cycles in series, Walrus's own and the cluster's.

A blob never changes once written (walrus/blobs.py: a new body is a new blob id, and an id is
never used twice), so a kept copy cannot go stale and needs no invalidation: `forget` on
delete only frees its memory sooner. Bounded by bytes, least recently used out first; blobs
larger than `largest` are never kept."""

from __future__ import annotations

import threading
from collections import OrderedDict


class BlobCache:
    def __init__(self, capacity: int, largest: int) -> None:
        self._capacity = capacity
        self._largest = min(largest, capacity)
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def fits(self, size: int) -> bool:
        return 0 < size <= self._largest

    def get(self, blob_id: str) -> bytes | None:
        with self._lock:
            data = self._blobs.get(blob_id)
            if data is not None:
                self._blobs.move_to_end(blob_id)
            return data

    def put(self, blob_id: str, data: bytes) -> None:
        if not self.fits(len(data)):
            return
        with self._lock:
            if blob_id in self._blobs:
                return
            self._blobs[blob_id] = data
            self._size += len(data)
            while self._size > self._capacity:
                _, dropped = self._blobs.popitem(last=False)
                self._size -= len(dropped)

    def forget(self, blob_ids: list[str]) -> None:
        with self._lock:
            for blob_id in blob_ids:
                data = self._blobs.pop(blob_id, None)
                if data is not None:
                    self._size -= len(data)
