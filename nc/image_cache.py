"""The node's image cache: every instance of a node boots from a copy-on-write overlay of one
cached image, so each image (keyed by id and checksum) is fetched from Walrus once.

Bounded by NC_CACHE_SIZE: the least recently used image goes first, and never one that an
instance still needs (the caller says which keys are in use, from its own records, so the
answer survives a crash). The directory is the truth: the index is rebuilt from it on first use
(not at construction, so a simulated node that never runs an instance never touches the disk)."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from services.internal import signed_headers
from services.messages.node import ImageRef

SIMULATED_IMAGE_BYTES = 10 * 1024 * 1024
_HASHES = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class ImageFetchError(Exception):
    """The image could not be put in the cache; the message is meant for the instance's
    StateReason (`image download failed: …`)."""


@dataclass
class CachedImage:
    key: str
    path: Path
    size_bytes: int
    last_used: int      # position in use order; higher = more recent


def image_key(ref: ImageRef) -> str:
    checksum = (ref.checksum or "").split(":")[-1][:16] or "any"
    return _UNSAFE.sub("_", f"{ref.image_id}-{checksum}")


def _hasher(checksum: str | None) -> tuple[str, str] | None:
    """(algorithm, expected hex) from `sha256:<hex>` or bare hex whose length names the hash."""
    if not checksum:
        return None
    algorithm, _, digest = checksum.rpartition(":")
    digest = digest.lower()
    algorithm = algorithm.lower() or _HASHES.get(len(digest), "")
    return (algorithm, digest) if algorithm in hashlib.algorithms_available else None


class ImageCache:
    def __init__(self, directory: Path, limit_mb: int, *, secret: str = "",
                 timeout: float = 60.0) -> None:
        self.directory = directory
        self.limit_bytes = limit_mb * 1024 * 1024
        self._secret = secret
        self._timeout = timeout
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._clock = itertools.count(1)
        self._entries: dict[str, CachedImage] = {}
        self._loaded = False

    def _load(self) -> None:
        """Rebuild the index from the directory, once (call with the lock held)."""
        if self._loaded:
            return
        self._loaded = True
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.part"):
            leftover.unlink(missing_ok=True)
        files = sorted(self.directory.glob("*.img"), key=lambda p: p.stat().st_mtime)
        for path in files:
            self._entries[path.stem] = CachedImage(path.stem, path, path.stat().st_size, next(self._clock))

    def entries(self) -> list[CachedImage]:
        with self._lock:
            self._load()
            return sorted(self._entries.values(), key=lambda e: e.last_used)

    def total_bytes(self) -> int:
        with self._lock:
            self._load()
            return sum(e.size_bytes for e in self._entries.values())

    def ensure(self, ref: ImageRef, in_use: Iterable[str] | Callable[[], Iterable[str]] = ()) -> Path:
        """The cached file of `ref`, fetching it first if needed; marks it most recently used.
        `in_use` (keys that must not be evicted) may be a function: it is then asked only when
        a fetch needs room, not on every hit."""
        key = image_key(ref)
        with self._lock:
            self._load()
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.path.exists():
                    entry.last_used = next(self._clock)
                    os.utime(entry.path)
                    return entry.path
            path = self.directory / f"{key}.img"
            size = self._fill(ref, path)
            with self._lock:
                full = sum(e.size_bytes for e in self._entries.values()) + size > self.limit_bytes
            keep = {key} | (set(in_use() if callable(in_use) else in_use) if full else set())
            with self._lock:
                self._make_room(size, keep)
                self._entries[key] = CachedImage(key, path, size, next(self._clock))
            return path

    def _make_room(self, incoming: int, keep: set[str]) -> None:
        """Evict least recently used images not in `keep` until `incoming` fits. When only
        images in use remain, the cache runs over its bound rather than break an instance."""
        total = sum(e.size_bytes for e in self._entries.values())
        for entry in sorted(self._entries.values(), key=lambda e: e.last_used):
            if total + incoming <= self.limit_bytes:
                break
            if entry.key in keep:
                continue
            entry.path.unlink(missing_ok=True)
            del self._entries[entry.key]
            total -= entry.size_bytes

    def _fill(self, ref: ImageRef, path: Path) -> int:
        partial = path.with_suffix(".part")
        try:
            if ref.url is None:
                self._simulate(ref, partial)
            else:
                self._download(ref, partial)
            partial.replace(path)
        except ImageFetchError:
            partial.unlink(missing_ok=True)
            raise
        except (OSError, httpx.HTTPError) as exc:
            partial.unlink(missing_ok=True)
            raise ImageFetchError(f"image download failed: {ref.image_id} from {ref.url}: {exc}") from None
        return path.stat().st_size

    @staticmethod
    def _simulate(ref: ImageRef, partial: Path) -> None:
        # A simulated image: no bytes to fetch, so a sparse file of the advertised size stands in.
        with partial.open("wb") as stream:
            stream.write(f"eucasim simulated image {ref.image_id}\n".encode())
            stream.truncate(max(ref.size_bytes or SIMULATED_IMAGE_BYTES, 64))

    def _headers(self, url: str) -> dict[str, str]:
        """Walrus's internal image route wants a signed call; a presigned URL needs nothing."""
        parts = urlsplit(url)
        if not self._secret or not parts.path.startswith("/internal/"):
            return {}
        return signed_headers(self._secret, "GET", parts.path + (f"?{parts.query}" if parts.query else ""))

    def _download(self, ref: ImageRef, partial: Path) -> None:
        assert ref.url is not None
        check = _hasher(ref.checksum)
        digest = hashlib.new(check[0]) if check else None
        with httpx.stream("GET", ref.url, headers=self._headers(ref.url), timeout=self._timeout,
                          follow_redirects=True) as response:
            if response.status_code != 200:
                said = response.read()[:300].decode("utf-8", "replace").strip()
                raise ImageFetchError(f"image download failed: {ref.image_id} from {ref.url}: "
                                      f"HTTP {response.status_code}" + (f" {said}" if said else ""))
            with partial.open("wb") as stream:
                for chunk in response.iter_bytes(1024 * 1024):
                    stream.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
        if check and digest is not None and digest.hexdigest() != check[1]:
            raise ImageFetchError(f"image download failed: {ref.image_id}: {check[0]} checksum "
                                  f"{digest.hexdigest()} does not match {check[1]}")
        if ref.size_bytes is not None and partial.stat().st_size != ref.size_bytes:
            raise ImageFetchError(f"image download failed: {ref.image_id}: got "
                                  f"{partial.stat().st_size} bytes, expected {ref.size_bytes}")
