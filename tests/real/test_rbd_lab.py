"""Real mode on RBD (issue 17): the lab's cloud (services/lab/cloud.py) with SC_BACKEND=rbd, its
volumes in a throwaway Ceph cluster whose daemons run in the lab's node namespace on the node's
wire address (tests/support/ceph.py with `enter`), where the SC in the front end and the node's
QEMU both reach it. A running QEMU guest sees an RBD volume hot-plugged: libvirt gets a network
disk (protocol rbd) whose key is the secret the NC defined, QEMU opens the image through librbd
(no qemu-nbd anywhere), the guest's disk agent sees the new disk with the volume id as its
serial and writes its marker into it — which is then read back out of the RBD image — and the
disk leaves the guest on detach.

Reuses test_lab.py's helpers (console lines, virsh) and the lab's tiny guest; the lab, the Ceph
daemons and the guest come down even when a check fails."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from nc.ceph_secret import secret_uuid
from services import credentials
from services.lab.cloud import DEFAULT_GUEST_CACHE, Lab, LabImages
from services.lab.topology import NODE_WIRE
from tests.real.lablock import exclusive_lab
from tests.real.test_lab import (BOOT_TIMEOUT, ZONE, console_line, described, qemu_nbd_pids, virsh,
                                 volume_state, wait_for)
from tests.support.ceph import CephCluster, available, ceph_cluster
from tests.support.volume_data import RbdData

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def rbd_lab() -> Iterator[tuple[Lab, LabImages, CephCluster]]:
    assert os.geteuid() == 0, "real mode runs as root (CI runs `make test` as root)"
    assert available(), "Ceph 16 is not installed; `make test-debs`"
    pid = os.getpid()
    root = Path("/var/tmp") / f"eucasim-rbd-lab-{pid}"
    # The SC and the NC read the cluster's ceph.conf at their first RBD call; the cluster can
    # only start once the lab's node namespace exists, so the lab names a link made then.
    conf_link = Path("/var/tmp") / f"eucasim-rbd-lab-{pid}.ceph.conf"
    made = Lab(root, DEFAULT_GUEST_CACHE, tag=f"er{pid % 100000}",
               conf={"SC_BACKEND": "rbd", "SC_CEPH_CONF": str(conf_link), "SC_CEPH_POOL": "rbd",
                     "SC_CEPH_USER": "admin", "SC_MAX_STORAGE": "16"})
    with exclusive_lab():
        try:
            images = made.up(say=lambda _line: None)
            with ceph_cluster(NODE_WIRE, enter=made.topology.enter("node")) as ceph:
                conf_link.symlink_to(ceph.conf)
                try:
                    yield made, images, ceph
                finally:
                    conf_link.unlink(missing_ok=True)
                    # The NC's ceph secret is libvirt's (persistent, under /etc/libvirt/secrets).
                    virsh("secret-undefine", secret_uuid("admin"))
        finally:
            made.down()
    assert not root.exists() and not conf_link.exists()


@pytest.fixture(scope="module")
def ec2(rbd_lab: tuple[Lab, LabImages, CephCluster]) -> Any:
    creds = credentials.read(rbd_lab[0].home)
    return boto3.client("ec2", endpoint_url=creds.endpoints.ec2, region_name=creds.endpoints.region,
                        aws_access_key_id=creds.key.access_key, aws_secret_access_key=creds.key.secret_key,
                        config=Config(retries={"max_attempts": 2}))


@pytest.fixture(scope="module")
def guest(rbd_lab: tuple[Lab, LabImages, CephCluster], ec2: Any) -> Iterator[str]:
    instance_id = ec2.run_instances(ImageId=rbd_lab[1].image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    try:
        yield instance_id
    finally:
        try:
            ec2.terminate_instances(InstanceIds=[instance_id])
        except Exception:  # noqa: BLE001 - the lab's teardown removes the domain anyway
            pass


def test_a_running_guest_sees_an_rbd_volume_hot_plugged_and_writes_to_it(
        rbd_lab: tuple[Lab, LabImages, CephCluster], ec2: Any, guest: str) -> None:
    _, _, ceph = rbd_lab
    wait_for(lambda: described(ec2, guest)["State"]["Name"] == "running", BOOT_TIMEOUT, f"{guest} running")
    console_line(ec2, guest, r"EUCASIM-GUEST ready")

    volume = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    wait_for(lambda: volume_state(ec2, volume) == "available", 120, f"{volume} available")
    locator = f"rbd:{ceph.pool}/{volume}"
    data = RbdData(ceph.conf)
    assert data.exists(locator) and data.size(locator) == 1024 ** 3

    ec2.attach_volume(VolumeId=volume, InstanceId=guest, Device="/dev/sdf")
    added = console_line(ec2, guest, r"EUCASIM-GUEST disk-added (\S+) (\d+) serial=(\S*)", 180)
    disk = added.group(1)
    assert int(added.group(2)) * 512 == 1024 ** 3 and added.group(3) == volume
    console_line(ec2, guest, rf"EUCASIM-GUEST disk-marked {disk} EUCASIM-MARKER {guest} {volume}", 60)
    wait_for(lambda: volume_state(ec2, volume) == "in-use", 60, f"{volume} in-use")

    # What libvirt runs: an rbd network disk with the NC's ceph secret, read by QEMU itself.
    live = virsh("dumpxml", guest).stdout
    assert re.search(rf"<source protocol=['\"]rbd['\"] name=['\"]{ceph.pool}/{volume}['\"]", live), live
    assert secret_uuid("admin") in live and ceph.key("admin") not in live
    secret = virsh("secret-dumpxml", secret_uuid("admin")).stdout
    assert "<usage type='ceph'>" in secret and "client.admin secret" in secret, secret
    assert not qemu_nbd_pids(volume), "no qemu-nbd sits in an RBD volume's data path"
    # The guest's marker went through librbd into the cluster.
    marker = data.read(locator, 0, 512)
    assert marker.startswith(f"EUCASIM-MARKER {guest} {volume}".encode()), marker[:80]

    ec2.detach_volume(VolumeId=volume)
    console_line(ec2, guest, rf"EUCASIM-GUEST disk-removed {disk}", 120)
    wait_for(lambda: volume_state(ec2, volume) == "available", 120, f"{volume} available again")
    assert f"{ceph.pool}/{volume}" not in virsh("dumpxml", guest).stdout
    ec2.delete_volume(VolumeId=volume)
    wait_for(lambda: not data.exists(locator), 60, f"{volume}'s image removed")

