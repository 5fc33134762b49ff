"""Looking up access keys from a service that does not own them (Walrus, for one).

`KeyDirectory` is the small interface; `ClcKeyDirectory` asks the CLC's internal API and caches
answers briefly, `StaticKeyDirectory` serves a fixed set (tests, or a Walrus run on its own)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from services.internal import InternalCallError, InternalClient
from services.messages.identity import AccessKeyInfo

ACCESS_KEY_ROUTE = "/internal/access-keys/{access_key}"


class KeyDirectory(Protocol):
    def lookup(self, access_key: str) -> AccessKeyInfo | None: ...


class StaticKeyDirectory:
    def __init__(self, keys: list[AccessKeyInfo] | None = None) -> None:
        self._keys = {k.access_key: k for k in keys or []}

    def add(self, info: AccessKeyInfo) -> None:
        self._keys[info.access_key] = info

    def lookup(self, access_key: str) -> AccessKeyInfo | None:
        info = self._keys.get(access_key)
        return info if info and info.active else None


class ClcKeyDirectory:
    """Asks the CLC; a key is cached for `ttl` seconds so a burst of S3 calls costs one lookup,
    while a deleted or deactivated key stops working within that time."""

    def __init__(self, client: InternalClient, ttl: float = 30.0) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, AccessKeyInfo | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, access_key: str) -> AccessKeyInfo | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(access_key)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        try:
            info = self._client.call("GET", ACCESS_KEY_ROUTE.format(access_key=access_key),
                                     response=AccessKeyInfo)
        except InternalCallError as exc:
            if exc.status != 404:
                raise
            info = None
        if info is not None and not info.active:
            info = None
        with self._lock:
            self._cache[access_key] = (now, info)
        return info
