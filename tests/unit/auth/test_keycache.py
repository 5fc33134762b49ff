"""KeyCache: found keys are reused for a while, misses always ask again."""

from __future__ import annotations

from services.auth.keycache import KeyCache


def test_a_found_key_is_looked_up_once_within_the_ttl() -> None:
    asked: list[str] = []
    cache = KeyCache(lambda key: asked.append(key) or f"secret-{key}", ttl=60)
    assert cache.get("AK1") == "secret-AK1"
    assert cache.get("AK1") == "secret-AK1"
    assert asked == ["AK1"]


def test_a_missing_key_is_asked_for_every_time_so_a_new_key_works_at_once() -> None:
    known: dict[str, str] = {}
    cache = KeyCache(known.get, ttl=60)
    assert cache.get("AK2") is None
    known["AK2"] = "s2"
    assert cache.get("AK2") == "s2"


def test_an_expired_entry_is_read_again_and_a_vanished_key_is_refused() -> None:
    known = {"AK3": "s3"}
    cache = KeyCache(known.get, ttl=0)
    assert cache.get("AK3") == "s3"
    del known["AK3"]
    assert cache.get("AK3") is None


def test_forget_drops_a_key_before_its_time() -> None:
    known = {"AK4": "old"}
    cache = KeyCache(known.get, ttl=60)
    assert cache.get("AK4") == "old"
    known["AK4"] = "new"
    cache.forget("AK4")
    assert cache.get("AK4") == "new"


def test_the_cache_stays_within_its_bound() -> None:
    cache = KeyCache(lambda key: key.lower(), ttl=60, size=3)
    for n in range(10):
        cache.get(f"AK{n}")
    assert len(cache._found) <= 3
