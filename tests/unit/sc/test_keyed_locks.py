"""The SC's per-volume locks: one key's holders exclude each other, other keys do not wait, and
nothing is kept for a key once no one holds or waits for it (a lock per volume ever made grew
the SC's memory under load)."""

from __future__ import annotations

import threading

from sc.jobs import KeyedLocks


def test_one_key_is_held_by_one_thread_at_a_time() -> None:
    locks = KeyedLocks()
    inside = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    def first() -> None:
        with locks("vol-1"):
            inside.set()
            release.wait(5)
            entered.append("first")

    def second() -> None:
        with locks("vol-1"):
            entered.append("second")

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(5)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.2)
    assert two.is_alive(), "the second holder entered while the first held the key"
    with locks("vol-2"):  # another key does not wait for vol-1
        pass
    release.set()
    one.join(5)
    two.join(5)
    assert entered == ["first", "second"]
    assert len(locks) == 0


def test_a_key_is_kept_while_someone_waits_and_dropped_after() -> None:
    locks = KeyedLocks()
    for n in range(1000):
        with locks(f"vol-{n}"):
            assert len(locks) == 1
    assert len(locks) == 0
