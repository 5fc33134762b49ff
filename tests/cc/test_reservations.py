"""Reservations: held from the decision until the node's own list counts the instance."""

from __future__ import annotations

from cc.reservations import ZERO, Reservations
from services.messages.node import Resources

ONE = Resources(cores=1, memory_mb=256, disk_gb=6)


def test_held_per_node_until_a_poll_or_push_lists_the_instance():
    changes: list[int] = []
    book = Reservations(on_change=lambda _url: changes.append(1))
    book.reserve("http://n1", "i-1", ONE)
    book.reserve("http://n1", "i-2", ONE)
    book.reserve("http://n2", "i-3", ONE)
    assert book.held("http://n1").cores == 2
    assert book.held_by_node()["http://n2"] == ONE
    # A poll of n1 that does not list them yet (NC call still in flight) releases nothing.
    assert book.settle("http://n1", []) == []
    assert book.settle("http://n1", ["i-2", "i-3", "i-9"]) == ["i-2"]
    assert book.held("http://n1").cores == 1
    assert len(changes) == 4


def test_a_refused_instance_is_released_at_once_and_nothing_held_is_zero():
    book = Reservations()
    book.reserve("http://n1", "i-1", ONE)
    assert book.release("i-1") and not book.release("i-1")
    assert book.held("http://n1") is ZERO
    assert book.count() == 0 and book.held_by_node() == {}
