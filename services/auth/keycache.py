"""A short-lived cache in front of an access-key look-up (a database query on the CLC).

Only keys found active are kept, and only for `ttl` seconds: a key created a moment ago works at
once (a miss always asks again), and a key deactivated or deleted behind the service's back stops
working within `ttl`, as Walrus's ClcKeyDirectory already behaves. The cache is bounded, so a
stream of made-up access keys cannot grow it (misses are never stored)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class KeyCache(Generic[T]):
    def __init__(self, lookup: Callable[[str], T | None], ttl: float = 10.0, size: int = 4096) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._size = size
        self._found: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, access_key: str) -> T | None:
        now = time.monotonic()
        hit = self._found.get(access_key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        info = self._lookup(access_key)
        with self._lock:
            if info is None:
                self._found.pop(access_key, None)
            else:
                if len(self._found) >= self._size:
                    self._found.clear()  # rare: more live keys than the bound; start over
                self._found[access_key] = (now, info)
        return info

    def forget(self, access_key: str | None = None) -> None:
        """Drop one key (or all), so the next request reads the database."""
        with self._lock:
            if access_key is None:
                self._found.clear()
            else:
                self._found.pop(access_key, None)
