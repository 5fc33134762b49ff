"""Real mode end to end: `eucasim lab up`'s cloud (front end and node as namespaces, libvirtd,
QEMU) driven with boto3 from the root namespace through the host link. One guest boots for the
whole module; the lab comes down even when a check fails."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from services import credentials
from services.lab.cloud import DEFAULT_GUEST_CACHE, Lab, LabImages

BOOT_TIMEOUT = 300.0  # TCG on a shared two-core machine: a guest boots in 5-60 s


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, LabImages]]:
    assert os.geteuid() == 0, "real mode runs as root (CI runs `make test` as root)"
    root = Path("/var/tmp") / f"eucasim-lab-test-{os.getpid()}"
    made = Lab(root, DEFAULT_GUEST_CACHE, tag=f"el{os.getpid() % 100000}")
    try:
        images = made.up(say=lambda _line: None)
        yield made, images
    finally:
        made.down()
    assert not root.exists()
    assert not made.topology.exists()


@pytest.fixture(scope="module")
def ec2(lab: tuple[Lab, LabImages]) -> Any:
    creds = credentials.read(lab[0].home)
    return boto3.client("ec2", endpoint_url=creds.endpoints.ec2, region_name=creds.endpoints.region,
                        aws_access_key_id=creds.key.access_key, aws_secret_access_key=creds.key.secret_key,
                        config=Config(retries={"max_attempts": 2}))


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s (last: {last!r})")


def console(ec2: Any, instance_id: str) -> str:
    return ec2.get_console_output(InstanceId=instance_id).get("Output") or ""


@pytest.fixture(scope="module")
def guest(lab: tuple[Lab, LabImages], ec2: Any) -> Iterator[dict[str, Any]]:
    reservation = ec2.run_instances(ImageId=lab[1].image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")
    instance = reservation["Instances"][0]
    yield instance
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_the_guest_boots_gets_its_planned_address_by_dhcp_and_reads_its_metadata(
        ec2: Any, guest: dict[str, Any]) -> None:
    instance_id = guest["InstanceId"]

    def running() -> dict[str, Any] | None:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        assert found["State"]["Name"] in ("pending", "running"), found.get("StateReason")
        return found if found["State"]["Name"] == "running" else None

    described = wait_for(running, BOOT_TIMEOUT, "running")
    private = described["PrivateIpAddress"]
    output = wait_for(lambda: (text := console(ec2, instance_id)) and "EUCASIM-GUEST ready" in text and text,
                      BOOT_TIMEOUT, "the guest's 'ready' line")
    assert "EUCASIM-GUEST booted" in output
    address = re.search(r"EUCASIM-GUEST address (\S+)", output)
    assert address is not None and address.group(1).split("/")[0] == private, output
    assert f"EUCASIM-GUEST instance-id {instance_id}" in output


def fetch_from_internet(lab: Lab, address: str) -> str | None:
    done = lab.topology.run("inet", "timeout", "3", "busybox", "wget", "-qO-", f"http://{address}/",
                            check=False, timeout=10)
    return done.stdout if done.returncode == 0 else None


def test_an_elastic_ip_answers_http_from_the_internet_once_the_group_allows_port_80(
        lab: tuple[Lab, LabImages], ec2: Any, guest: dict[str, Any]) -> None:
    made, instance_id = lab[0], guest["InstanceId"]
    wait_for(lambda: "EUCASIM-GUEST ready" in console(ec2, instance_id), BOOT_TIMEOUT, "the guest's httpd")
    address = ec2.allocate_address(Domain="standard")["PublicIp"]
    ec2.associate_address(InstanceId=instance_id, PublicIp=address)
    # The CC has applied the association once fe's DNAT names the address; only then does a
    # refused fetch mean the group's rules, not a plan still on its way.
    wait_for(lambda: address in made.topology.run("fe", "iptables", "-t", "nat", "-S").stdout,
             60, f"the DNAT for {address} in fe")
    assert fetch_from_internet(made, address) is None

    ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=80, ToPort=80,
                                         CidrIp="0.0.0.0/0")
    page = wait_for(lambda: fetch_from_internet(made, address), 60, f"HTTP on {address}")
    assert page.strip() == f"GUEST {instance_id} says hello"


def test_terminating_the_guest_destroys_its_domain(lab: tuple[Lab, LabImages], ec2: Any,
                                                   guest: dict[str, Any]) -> None:
    instance_id = guest["InstanceId"]
    assert instance_id in virsh_names()
    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_for(lambda: instance_id not in virsh_names(), 120, f"{instance_id}'s domain gone")

    def state() -> str:
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        return str(found["State"]["Name"])

    wait_for(lambda: state() == "terminated", 120, "terminated")


def virsh_names() -> list[str]:
    listed = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                            capture_output=True, text=True, check=True, timeout=30)
    return listed.stdout.split()
