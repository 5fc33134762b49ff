"""Starting and stopping the cloud as a new user does, with a real `eucasim up` process: the
banner means a launch works, a stop signal leaves nothing behind, a second start resumes the
same cloud, and a port already taken is named with its holder before anything starts."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.up_process import (alive, descendants, kill_leftovers, start_up,
                                        stop_and_check_nothing_left)

pytestmark = pytest.mark.timeout(600)


def test_a_launch_right_after_the_banner_succeeds_sigterm_stops_all_and_a_second_up_resumes(tmp_path: Path):
    home = tmp_path / "state"
    # One core a node: the launch below needs the CLC to count every node, not just the first.
    one_core = {"MAX_CORES": "1"}
    first = start_up(home, nodes=2, settings=one_core)
    try:
        first.banner()
        ec2 = first.ec2()
        # At once, as a user pasting the banner's command: both nodes' room is known.
        launched = ec2.run_instances(ImageId=first.image_id, InstanceType="m1.small",
                                     MinCount=2, MaxCount=2)["Instances"]
        instance_ids = sorted(i["InstanceId"] for i in launched)
        ec2.get_waiter("instance_running").wait(InstanceIds=instance_ids,
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        first.s3().create_bucket(Bucket="kept-across-restarts")
        first.s3().put_object(Bucket="kept-across-restarts", Key="note", Body=b"still here")
        ec2.create_key_pair(KeyName="kept")
    except BaseException:
        kill_leftovers(descendants(first.process.pid))
        first.process.kill()
        raise
    stop_and_check_nothing_left(first, signal.SIGTERM)

    second = start_up(home, nodes=2, settings=one_core)
    try:
        second.banner()
        assert second.image_id == first.image_id
        ec2 = second.ec2()
        described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
        instances = {i["InstanceId"]: i for r in described for i in r["Instances"]}
        assert sorted(instances) == instance_ids
        assert {i["State"]["Name"] for i in instances.values()} <= {"pending", "running"}
        assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["kept"]
        body = second.s3().get_object(Bucket="kept-across-restarts", Key="note")["Body"].read()
        assert body == b"still here"
        image = ec2.describe_images(ImageIds=[first.image_id])["Images"][0]
        assert image["State"] == "available"
    except BaseException:
        kill_leftovers(descendants(second.process.pid))
        second.process.kill()
        raise
    stop_and_check_nothing_left(second, signal.SIGINT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stop_signal_while_starting_leaves_no_process(tmp_path: Path, signum: int):
    up = start_up(tmp_path / "state", nodes=2)
    seen: set[int] = set()
    try:
        # The CLC and Walrus are up, the rest not yet: the launcher is in the middle of it.
        up.read_until("✓ walrus")
        seen = descendants(up.process.pid)
        assert seen
        up.process.send_signal(signum)
        up.finish(timeout=60)
        left = {pid for pid in seen | descendants(up.process.pid) if alive(pid)}
        assert not left, f"left running after {signal.Signals(signum).name} while starting: {left}"
        assert "Traceback" not in up.output
    finally:
        kill_leftovers(seen)
        if up.process.poll() is None:
            up.process.kill()


def test_a_port_held_by_another_program_is_named_with_its_process_and_nothing_starts(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import socket,sys,time\n"
        "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        up = start_up(tmp_path / "state", nodes=1, walrus=port)
        code = up.finish(timeout=120)
        assert code == 1, up.output
        assert f"port {port} (walrus)" in up.output
        assert f"pid {holder.pid}" in up.output
        assert "✓" not in up.output and "Traceback" not in up.output
        assert not descendants(up.process.pid)
    finally:
        holder.kill()
        holder.wait()


def test_a_second_cloud_beside_a_running_one_says_whose_ports_and_starts_nothing(tmp_path: Path):
    running = start_up(tmp_path / "first", nodes=1)
    try:
        running.banner()
        ports = {name: int(url.rsplit(":", 1)[1]) for name, url in running.urls.items()}
        # Another state directory, the same ports (as two `make up` with the default ports).
        beside = start_up(tmp_path / "second", nodes=1, **ports)
        assert beside.finish(timeout=120) == 1, beside.output
        for name, port in ports.items():
            assert f"port {port} ({name})" in beside.output, beside.output
        assert f"another eucasim cloud with state in {tmp_path / 'first'}" in beside.output
        assert "✓" not in beside.output and "Traceback" not in beside.output
        # The same state directory, any ports: refused before it binds anything.
        same = start_up(tmp_path / "first", nodes=1)
        assert same.finish(timeout=120) == 1, same.output
        assert f"pid {running.process.pid}" in same.output and "state in" in same.output
        assert "✓" not in same.output and "Traceback" not in same.output
        # And the running cloud is untouched by either.
        zones = running.ec2().describe_availability_zones()["AvailabilityZones"]
        assert zones[0]["ZoneName"] == "zone-1"
    except BaseException:
        kill_leftovers(descendants(running.process.pid))
        running.process.kill()
        raise
    stop_and_check_nothing_left(running, signal.SIGTERM)
