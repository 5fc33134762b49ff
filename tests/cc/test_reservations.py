"""Reservations: held from the decision until a poll's instance list shows the instance."""

from __future__ import annotations

import time

from cc.reservations import Reservations
from services.messages.node import Resources

ONE = Resources(cores=1, memory_mb=256, disk_gb=6)


def test_held_until_a_poll_lists_the_instance():
    book = Reservations()
    book.reserve("http://n1", "i-1", ONE)
    book.reserve("http://n1", "i-2", ONE)
    book.reserve("http://n2", "i-3", ONE)
    assert book.held("http://n1").cores == 2
    assert book.held_by_node()["http://n2"] == ONE
    # A poll of n1 that does not list them yet (NC call still in flight) releases nothing.
    assert book.settle("http://n1", time.monotonic(), set()) == []
    book.confirm("i-1")
    assert book.settle("http://n1", time.monotonic() - 60, {"i-2"}) == ["i-2"]
    assert book.held("http://n1").cores == 1


def test_an_instance_accepted_before_the_poll_but_not_listed_was_lost():
    book = Reservations()
    book.reserve("http://n1", "i-1", ONE)
    book.confirm("i-1")
    assert book.settle("http://n1", time.monotonic() + 1, set()) == ["i-1"]
    assert book.count() == 0


def test_a_refused_instance_is_released_at_once():
    book = Reservations()
    book.reserve("http://n1", "i-1", ONE)
    book.release("i-1")
    assert book.held("http://n1").cores == 0
