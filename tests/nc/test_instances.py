"""Run, describe, reboot, console and terminate through the NC's signed internal API."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from nc.models import InstanceRecord
from services.clock import KEEP_TERMINATED, utcnow
from services.internal import InternalCallError
from services.messages.node import (NC_DESCRIBE_ROUTE, ConsoleOutput, DescribeNodes, ImageRef, InstanceList,
                                    InstanceReport, NodeProcessReport)
from tests.nc.conftest import Driver, Node, run_request, start_node


def test_run_answers_pending_then_runs_and_terminates(node: Node) -> None:
    request = run_request(kernel=ImageRef(image_id="eki-00000001", size_bytes=4096),
                          ramdisk=ImageRef(image_id="eri-00000001", size_bytes=4096))
    report = node.run(request)
    assert report.state == "pending"
    assert report.node_id == node.runtime.node_id and report.vm.name == "m1.small"

    running = node.wait_state(request.instance_id, "running")
    assert running.reason is None and running.network.mac == request.network.mac
    assert node.runtime.hypervisor.state(request.instance_id) == "running"
    directory = node.home / "instances" / request.account_id / request.instance_id
    # Nodes with real guests get Eucalyptus's qcow2 overlay; simulated ones (the test driver, the
    # fake) a sparse copy of the cached image (no qemu-img per launch).
    root = "root.img" if node.runtime.hypervisor.simulated else "root.qcow2"
    assert {p.name for p in directory.iterdir()} >= {root, "ephemeral0.img", "swap.img",
                                                      "kernel", "ramdisk", "console.log"}
    assert (directory / root).stat().st_blocks * 512 < 1024 * 1024        # the image's holes stay holes
    assert (directory / "swap.img").stat().st_size == 512 * 1024 * 1024
    assert (directory / "swap.img").stat().st_blocks == 0          # sparse

    # Asking again (a CC retrying) changes nothing.
    assert node.run(request).state == "running"

    gone = node.call("POST", f"/internal/instances/{request.instance_id}/terminate", response=InstanceReport)
    assert gone.state in ("shutting-down", "terminated")
    final = node.wait_state(request.instance_id, "terminated")
    assert final.reason is not None and final.reason.code == "Client.UserInitiatedShutdown"
    assert node.runtime.hypervisor.state(request.instance_id) == "absent"
    assert not directory.exists()


re_zero = re.compile(r"\(0 \w+\)")


def test_reboot_and_console_say_what_the_nc_did(node: Node) -> None:
    request = run_request()
    node.run(request)
    node.wait_state(request.instance_id, "running")
    rebooted = node.call("POST", f"/internal/instances/{request.instance_id}/reboot", response=InstanceReport)
    assert rebooted.state == "running"

    console = node.call("GET", f"/internal/instances/{request.instance_id}/console", response=ConsoleOutput)
    text = console.output
    assert f"domain {request.instance_id} defined" in text
    assert "root sda1:" in text and "ephemeral0 sda2:" in text and "swap sda3:" in text
    assert "(512 MiB)" in text
    # The root disk shows the size it presents, never the few bytes of a fresh overlay.
    root = next(line for line in text.splitlines() if "root sda1:" in line)
    assert "(0 MiB)" not in root and not re_zero.search(root), root
    assert f"domain {request.instance_id} started at" in text
    assert f"domain {request.instance_id} rebooted at" in text
    assert text.index("defined") < text.index("started at") < text.index("rebooted at")


def test_errors_are_statuses_the_cc_can_act_on(node: Node) -> None:
    with pytest.raises(InternalCallError) as missing:
        node.call("POST", "/internal/instances/i-0badf00d/terminate")
    assert missing.value.status == 404

    request = run_request()
    node.run(request)
    node.wait_state(request.instance_id, "running")
    node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
    node.wait_state(request.instance_id, "terminated")
    with pytest.raises(InternalCallError) as late:
        node.call("POST", f"/internal/instances/{request.instance_id}/reboot")
    assert late.value.status == 409

    unsigned = httpx.get(f"{node.url}/internal/instances")
    assert unsigned.status_code == 403


def test_failing_image_download_becomes_a_state_reason(node: Node) -> None:
    broken = ImageRef(image_id="emi-0000dead", url="http://127.0.0.1:9/nothing-listens-here")
    request = run_request(image=broken)
    assert node.run(request).state == "pending"
    final = node.wait_state(request.instance_id, "terminated")
    assert final.reason is not None
    assert final.reason.code == "Server.InternalError"
    assert "image download failed: emi-0000dead" in final.reason.message
    console = node.call("GET", f"/internal/instances/{request.instance_id}/console", response=ConsoleOutput)
    assert "launch failed: image download failed" in console.output
    # A failed instance books nothing.
    assert node.resources().free == node.resources().max


def test_a_bug_is_a_server_error_not_an_answer(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(instance_id: str) -> InstanceReport:
        raise KeyError(instance_id)         # a programming error, not a behaviour of the NC

    monkeypatch.setattr(node.runtime.manager, "get", broken)
    with pytest.raises(InternalCallError) as bug:
        node.call("GET", "/internal/instances/i-0000beef")
    assert bug.value.status == 500


def test_describing_is_a_read_and_the_watch_pass_forgets_old_terminated(tmp_path: Path, driver: Driver) -> None:
    # A watch loop that never comes by itself: the test runs its pass.
    with start_node(tmp_path / "purge", driver, NC_POLLING_FREQUENCY=3600) as node:
        request = run_request()
        node.run(request)
        node.wait_state(request.instance_id, "running")
        node.call("POST", f"/internal/instances/{request.instance_id}/terminate")
        node.wait_state(request.instance_id, "terminated")
        with node.process.db.session() as session:
            record = session.get(InstanceRecord, request.instance_id)
            assert record is not None
            record.updated_at = utcnow() - KEEP_TERMINATED - timedelta(minutes=1)
        for _ in range(2):
            assert node.instance(request.instance_id).state == "terminated"
            described = node.call("POST", NC_DESCRIBE_ROUTE, DescribeNodes(), NodeProcessReport)
            assert [i.instance_id for i in described.nodes[0].instances] == [request.instance_id]

        node.process.watch_pass()
        listing = node.call("GET", "/internal/instances", response=InstanceList)
        assert listing.instances == []
        assert not (node.home / "instances" / request.account_id / request.instance_id).exists()


def test_an_instance_boots_from_its_ebs_root_and_starts_again_after_a_stop(node: Node, tmp_path: Path) -> None:
    """An EBS root takes the instance store's root disk's place: no image is fetched for it and
    the domain's unit 0 is the volume's file. Ended on this node (the CLC stops an instance
    so), the same instance may run here again, with another instance type."""
    from services.messages.attach import DiskSource
    from services.messages.node import BootVolume, VmType

    root_file, data_file = tmp_path / "vol-root", tmp_path / "vol-data"
    for path in (root_file, data_file):
        path.write_bytes(b"\0" * 4096)
    volumes = [BootVolume(volume_id="vol-0000aaaa", device="/dev/sda1", root=True,
                          source=DiskSource(driver="local", path=str(root_file), uri=root_file.as_uri())),
               BootVolume(volume_id="vol-0000bbbb", device="/dev/sdb",
                          source=DiskSource(driver="local", path=str(data_file), uri=data_file.as_uri()))]
    # The machine image's URL answers nothing: fetching it would fail the launch.
    request = run_request(image=ImageRef(image_id="emi-0000ebs1", url="http://127.0.0.1:9/none")
                          ).model_copy(update={"volumes": volumes})
    report = node.run(request)
    assert {(v.volume_id, v.target, v.state) for v in report.volumes} == {
        ("vol-0000aaaa", "sda1", "attached"), ("vol-0000bbbb", "sdb", "attached")}
    node.wait_state(request.instance_id, "running")
    directory = node.home / "instances" / request.account_id / request.instance_id
    assert not (directory / "root.img").exists() and not (directory / "root.qcow2").exists()
    if not node.runtime.hypervisor.uri.startswith("fake:"):
        xml = node.runtime.hypervisor.domain_xml(request.instance_id)
        assert str(root_file) in xml and str(data_file) in xml

    node.call("POST", f"/internal/instances/{request.instance_id}/terminate", response=InstanceReport)
    assert node.wait_state(request.instance_id, "terminated").volumes == []
    bigger = VmType(name="m1.large", cpu=2, memory_mb=512, disk_gb=10)
    again = node.run(request.model_copy(update={"vm": bigger}))
    assert again.state == "pending" and again.vm.name == "m1.large"
    node.wait_state(request.instance_id, "running")
    node.call("POST", f"/internal/instances/{request.instance_id}/terminate", response=InstanceReport)
    node.wait_state(request.instance_id, "terminated")
    # A plain instance's terminated record is still answered as it is (a CC retrying a run).
    plain = run_request()
    node.run(plain)
    node.wait_state(plain.instance_id, "running")
    node.call("POST", f"/internal/instances/{plain.instance_id}/terminate", response=InstanceReport)
    node.wait_state(plain.instance_id, "terminated")
    assert node.run(plain).state == "terminated"
