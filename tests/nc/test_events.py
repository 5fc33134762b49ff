"""Pushed state changes: a CC that subscribes with its describe call gets every instance's
changes as NodeEvents at its own route, without polling; changes made while a push is in
flight go out together in the next; a subscriber that is down stops nothing. The CC is a
tiny FastAPI app on a real socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, Response

from services.internal import InternalAuth, InternalCallError, InternalClient
from services.messages.cluster import CC_NODE_EVENTS_ROUTE
from services.messages.node import (NC_DESCRIBE_ROUTE, DescribeNodes, ImageRef, InstanceReport,
                                    NodeEvents, NodeProcessReport, NodeResources,
                                    Subscription)
from tests.nc.conftest import SECRET, Driver, Node, run_request, start_node, wait_for
from tests.support.nc_process import nc_process
from tests.support.servers import refused_port, running


@dataclass
class FakeCC:
    url: str = ""
    pushes: list[NodeEvents] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)   # cleared: pushes wait
    image_gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reports(self, instance_id: str) -> list[InstanceReport]:
        """Every pushed report of one instance, in the order they arrived."""
        with self.lock:
            return [r for push in self.pushes for event in push.events for r in event.instances
                    if r.instance_id == instance_id]

    def states(self, instance_id: str) -> list[str]:
        return [r.state for r in self.reports(instance_id)]


@pytest.fixture
def cc() -> Iterator[FakeCC]:
    app = FastAPI()
    fake = FakeCC()
    fake.hold.set()

    @app.post(CC_NODE_EVENTS_ROUTE, dependencies=[Depends(InternalAuth(SECRET))])
    def node_events(body: NodeEvents) -> dict[str, str]:
        fake.hold.wait(20)
        with fake.lock:
            fake.pushes.append(body)
        return {}

    @app.get("/slow-image")
    def slow_image() -> Response:
        fake.image_gate.wait(20)
        return Response(b"\0" * 4096, media_type="application/octet-stream")

    with running(app) as url:
        fake.url = url
        yield fake
        fake.hold.set()
        fake.image_gate.set()


def subscribe(node: Node, url: str, key: str = "nc-under-test") -> NodeProcessReport:
    body = DescribeNodes(subscribe=Subscription(url=url, key=key))
    return node.call("POST", NC_DESCRIBE_ROUTE, body, NodeProcessReport)


def test_describe_answers_the_whole_process_at_once(node: Node) -> None:
    request = run_request()
    node.run(request)
    node.wait_state(request.instance_id, "running")
    report = node.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
    [status] = report.nodes
    assert status.prefix == "" and status.resources.node_id == node.runtime.node_id
    assert [i.instance_id for i in status.instances] == [request.instance_id]
    assert status.resources == node.resources()
    assert status.resources.free.cores == status.resources.max.cores - 1


def test_a_subscribed_cc_is_told_of_pending_running_and_terminated(node: Node, cc: FakeCC) -> None:
    subscribe(node, cc.url)
    # The image download waits for the test, so `pending` is certainly pushed before `running`.
    request = run_request(image=ImageRef(image_id="emi-00000e01", url=f"{cc.url}/slow-image"))
    node.run(request)
    wait_for(lambda: "pending" in cc.states(request.instance_id), 10, "pending pushed")
    cc.image_gate.set()
    wait_for(lambda: "running" in cc.states(request.instance_id), 10, "running pushed")
    assert cc.states(request.instance_id)[:2] == ["pending", "running"]
    pushed = cc.pushes[-1]
    assert pushed.key == "nc-under-test" and pushed.events[0].prefix == ""
    # Each event carries the node's figures after the change.
    assert pushed.events[0].resources.free.cores == pushed.events[0].resources.max.cores - 1

    node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
    wait_for(lambda: "terminated" in cc.states(request.instance_id), 10, "terminated pushed")
    last = cc.reports(request.instance_id)[-1]
    assert last.reason is not None and last.reason.code == "Client.UserInitiatedShutdown"


def test_a_failed_launch_is_pushed_with_its_reason(node: Node, cc: FakeCC) -> None:
    subscribe(node, cc.url)
    request = run_request(image=ImageRef(image_id="emi-0000dead", url="http://127.0.0.1:9/nothing"))
    node.run(request)
    wait_for(lambda: "terminated" in cc.states(request.instance_id), 10, "failure pushed")
    failed = cc.reports(request.instance_id)[-1]
    assert failed.reason is not None and "image download failed" in failed.reason.message


def test_changes_during_a_push_are_batched_into_the_next(tmp_path: Path, driver: Driver, cc: FakeCC) -> None:
    with start_node(tmp_path / "busy", driver, MAX_CORES=8) as node:
        _launch_many_while_a_push_hangs(node, cc)


def _launch_many_while_a_push_hangs(node: Node, cc: FakeCC) -> None:
    subscribe(node, cc.url)
    cc.hold.clear()                     # the first push hangs in the CC until released
    requests = [run_request() for _ in range(8)]
    for request in requests:
        node.run(request)
    for request in requests:
        node.wait_state(request.instance_id, "running")
    cc.hold.set()
    for request in requests:
        wait_for(lambda r=request: "running" in cc.states(r.instance_id), 10, f"{request.instance_id} pushed")
    changes = 2 * len(requests)         # pending and running of each
    assert len(cc.pushes) < changes
    # Latest report per instance: none is pushed twice in one batch.
    for push in cc.pushes:
        ids = [r.instance_id for event in push.events for r in event.instances]
        assert len(ids) == len(set(ids))


def test_a_subscriber_that_is_down_stops_nothing(node: Node) -> None:
    with refused_port() as port:
        subscribe(node, f"http://127.0.0.1:{port}")
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")
        wait_for(lambda: node.runtime_pushes() >= 1, 10, "a push attempted (and failed)")


def test_the_latest_subscription_wins(node: Node, cc: FakeCC) -> None:
    with refused_port() as port:
        subscribe(node, f"http://127.0.0.1:{port}", key="old")
        subscribe(node, cc.url, key="new")
        request = run_request()
        node.run(request)
        wait_for(lambda: "running" in cc.states(request.instance_id), 10, "running pushed")
    assert {push.key for push in cc.pushes} == {"new"}


def test_a_process_of_many_fake_nodes_answers_and_pushes_for_all(tmp_path: Path, cc: FakeCC) -> None:
    with nc_process(tmp_path, SECRET, nodes=200, extra_env={"HYPERVISOR_URI": "fake://"}) as nc:
        root = InternalClient(nc.url, SECRET)
        report = root.call("POST", NC_DESCRIBE_ROUTE,
                           DescribeNodes(subscribe=Subscription(url=cc.url, key=nc.url)), NodeProcessReport)
        assert [n.prefix for n in report.nodes] == [f"/node-{i}" for i in range(1, 201)]
        assert {n.resources.hypervisor for n in report.nodes} == {"fake://"}

        last = InternalClient(nc.node_urls[-1], SECRET)
        request = run_request()
        last.call("POST", "/internal/instances", request, InstanceReport)
        wait_for(lambda: "running" in cc.states(request.instance_id), 10, "running pushed")
        event = next(e for push in cc.pushes for e in push.events
                     if any(r.instance_id == request.instance_id for r in e.instances))
        assert event.prefix == "/node-200" and event.resources.node_id == "node-200"
        assert {push.key for push in cc.pushes} == {nc.url}

        again = root.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
        busy = [n for n in again.nodes if n.instances]
        assert [(n.prefix, [i.state for i in n.instances]) for n in busy] == [("/node-200", ["running"])]
        # The per-node routes still answer, and unknown nodes are 404.
        assert last.call("GET", "/internal/resources", response=NodeResources) == busy[0].resources
        with pytest.raises(InternalCallError) as unknown:
            InternalClient(f"{nc.url}/node-201", SECRET).call("GET", "/internal/instances")
        assert unknown.value.status == 404
        root.close()
        last.close()
