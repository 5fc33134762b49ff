"""The NC process's describe as a delta: with the cursor of an earlier answer it carries only
the nodes and instances changed since; a cursor it does not know (it restarted) gets a whole
answer; and a terminated instance is forgotten once a caller has acknowledged a cursor past
its end, and reported `gone` in the next delta."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.messages.node import NC_DESCRIBE_ROUTE, DescribeNodes, NodeProcessReport
from tests.nc.conftest import DRIVERS, SECRET, Node, run_request, start_node
from tests.support.nc_process import nc_process
from services.internal import InternalClient


def describe(node: Node, since: str | None = None, whole: list[str] | None = None) -> NodeProcessReport:
    return node.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(since=since, whole=whole or []), NodeProcessReport)


@pytest.fixture
def fake_node(tmp_path: Path) -> Iterator[Node]:
    with start_node(tmp_path / "n1", DRIVERS["fake"]) as node:
        yield node


def test_a_describe_with_the_cursor_answers_only_what_changed(fake_node: Node) -> None:
    first = fake_node.run(run_request())
    fake_node.wait_state(first.instance_id, "running")
    whole = describe(fake_node)
    assert not whole.delta and whole.cursor is not None
    assert [i.instance_id for i in whole.nodes[0].instances] == [first.instance_id]

    quiet = describe(fake_node, whole.cursor)
    assert quiet.delta and quiet.nodes == [] and quiet.absent == []

    second = fake_node.run(run_request())
    fake_node.wait_state(second.instance_id, "running")
    delta = describe(fake_node, quiet.cursor)
    assert delta.delta
    [status] = delta.nodes
    assert not status.complete
    assert [(i.instance_id, i.state) for i in status.instances] == [(second.instance_id, "running")]
    # The node's figures count both instances, as a whole answer's would.
    figures = describe(fake_node).nodes[0].resources
    assert (status.resources.free, status.resources.max) == (figures.free, figures.max)
    assert status.resources.free.cores == status.resources.max.cores - 2


def test_a_node_asked_whole_comes_complete_in_a_delta(fake_node: Node) -> None:
    report = fake_node.run(run_request())
    fake_node.wait_state(report.instance_id, "running")
    cursor = describe(fake_node).cursor
    answer = describe(fake_node, cursor, whole=[""])
    assert answer.delta
    [status] = answer.nodes
    assert status.complete and [i.instance_id for i in status.instances] == [report.instance_id]
    assert describe(fake_node, cursor, whole=["/no-such-node"]).absent == ["/no-such-node"]


def test_a_restarted_nc_answers_an_old_cursor_whole(tmp_path: Path) -> None:
    with nc_process(tmp_path / "zone", SECRET, nodes=2, max_cores=4) as nc:
        root = InternalClient(nc.url, SECRET)
        try:
            cursor = root.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport).cursor
            assert root.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(since=cursor), NodeProcessReport).delta
            nc.kill()
            nc.start()
            again = root.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(since=cursor), NodeProcessReport)
        finally:
            root.close()
    assert not again.delta
    assert [n.prefix for n in again.nodes] == ["/node-1", "/node-2"]
    assert again.cursor != cursor


def test_a_terminated_instance_is_forgotten_once_a_caller_has_seen_it(
        fake_node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nc.instances.FORGET_SEEN", timedelta(0))
    monkeypatch.setattr("nc.process.FORGET_SEEN", timedelta(0))
    report = fake_node.run(run_request())
    fake_node.wait_state(report.instance_id, "running")
    before_end = describe(fake_node).cursor
    fake_node.call("POST", f"/internal/instances/{report.instance_id}/terminate")
    fake_node.wait_state(report.instance_id, "terminated")

    # Nobody has acknowledged a cursor past its end: it stays, however often the pass runs.
    fake_node.process.watch_pass()
    assert [i.state for i in describe(fake_node).nodes[0].instances] == ["terminated"]

    # A caller sends back a cursor taken after the end: it has seen it, and the NC forgets it.
    seen = describe(fake_node, before_end)
    assert [i.state for i in seen.nodes[0].instances] == ["terminated"]
    describe(fake_node, seen.cursor)
    fake_node.process.watch_pass()
    assert describe(fake_node).nodes[0].instances == []
    gone = describe(fake_node, seen.cursor)
    assert [(s.gone, s.instances) for s in gone.nodes] == [([report.instance_id], [])]


def test_without_a_cursor_a_terminated_instance_is_kept(fake_node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that never sends a cursor back (a CC from before deltas) may not have seen the
    end: the NC keeps the instance for KEEP_TERMINATED, as before."""
    monkeypatch.setattr("nc.instances.FORGET_SEEN", timedelta(0))
    monkeypatch.setattr("nc.process.FORGET_SEEN", timedelta(0))
    report = fake_node.run(run_request())
    fake_node.wait_state(report.instance_id, "running")
    fake_node.call("POST", f"/internal/instances/{report.instance_id}/terminate")
    fake_node.wait_state(report.instance_id, "terminated")
    for _ in range(3):
        describe(fake_node)
        fake_node.process.watch_pass()
    assert [i.state for i in describe(fake_node).nodes[0].instances] == ["terminated"]
