"""The memory of small blobs a Walrus on an S3 cluster keeps (walrus/blob_cache.py)."""

from __future__ import annotations

from walrus.blob_cache import BlobCache


def test_kept_blobs_are_bounded_by_bytes_least_recently_used_out_first() -> None:
    cache = BlobCache(capacity=10, largest=4)
    for name in ("a", "b", "c"):
        cache.put(name, name.encode() * 3)
    assert cache.get("a") == b"aaa"  # now the most recently used
    cache.put("d", b"dddd")  # 13 bytes: the least recently used goes
    assert cache.get("b") is None
    assert [cache.get(n) for n in ("a", "c", "d")] == [b"aaa", b"ccc", b"dddd"]


def test_large_and_empty_blobs_are_never_kept_and_forget_frees_them() -> None:
    cache = BlobCache(capacity=100, largest=4)
    cache.put("big", b"12345")
    cache.put("empty", b"")
    assert cache.get("big") is None and cache.get("empty") is None
    cache.put("small", b"1234")
    cache.forget(["small", "never-kept"])
    assert cache.get("small") is None
    for index in range(26):  # the bytes forgotten are free again: 25 fit, the 26th pushes one out
        cache.put(str(index), b"1234")
    assert cache.get("25") == b"1234" and cache.get("0") is None and cache.get("1") == b"1234"
