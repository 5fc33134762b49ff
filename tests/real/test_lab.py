"""Real mode end to end (issue 11): `eucasim lab up`'s cloud (front end and node as namespaces,
libvirtd, QEMU) driven with boto3 from the root namespace through the host link.

One lab and two guests for the whole module, launched together so they boot side by side:
`first` carries the elastic IP, the reboot and the killed QEMU; `second` receives the volume
`first` wrote and the snapshot's copy, and is terminated last. The tests run in file order and
each leaves its guests as the next expects. The lab, the internet listener and every guest
come down even when a check fails.

The guest's side of each check is a line on its console (services/lab/guest_init.sh): "address",
"instance-id", "user-data-ran", "ephemeral"/"swap", and its disk agent's "disk-added",
"disk-marked" (a blank new disk got "EUCASIM-MARKER <instance-id> <serial>" in its first sector),
"disk-marker" (a new disk already held one) and "disk-removed"."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from services import credentials
from services.lab.cloud import DEFAULT_GUEST_CACHE, Lab, LabImages
from services.lab.topology import INET_ADDRESS
from tests.real.lablock import exclusive_lab

BOOT_TIMEOUT = 300.0    # TCG on a shared two-core machine: a guest boots in 5-60 s
# The first test also waits for the lab to come up and two guests to boot.
pytestmark = pytest.mark.timeout(900)
LISTENER_PORT = 8080
ZONE = "zone-1"
# Run by the guest's /init: says hello on the console, then fetches from the internet
# namespace every two seconds for ever, so the listener there sees which address it came from.
USER_DATA = f"""#!/bin/sh
echo user-data says hello
(while true; do timeout 3 wget -qO /dev/null http://{INET_ADDRESS}:{LISTENER_PORT}/outbound; sleep 2; done) \\
    >/dev/null 2>&1 &
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, LabImages]]:
    assert os.geteuid() == 0, "real mode runs as root (CI runs `make test` as root)"
    root = Path("/var/tmp") / f"eucasim-lab-test-{os.getpid()}"
    made = Lab(root, DEFAULT_GUEST_CACHE, tag=f"el{os.getpid() % 100000}")
    with exclusive_lab():
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


@pytest.fixture(scope="module")
def listener(lab: tuple[Lab, LabImages], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An HTTP server in the internet namespace whose log names each client's address."""
    folder = tmp_path_factory.mktemp("inet")
    log = folder / "access.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["ip", "netns", "exec", lab[0].topology.ns("inet"), "python3", "-m", "http.server",
             str(LISTENER_PORT), "--bind", INET_ADDRESS, "--directory", str(folder)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def guests(lab: tuple[Lab, LabImages], ec2: Any, listener: Path) -> Iterator[tuple[str, str]]:
    reservation = ec2.run_instances(ImageId=lab[1].image_id, MinCount=2, MaxCount=2,
                                    InstanceType="m1.small", UserData=USER_DATA)
    ids = sorted(i["InstanceId"] for i in reservation["Instances"])
    try:
        yield ids[0], ids[1]
    finally:
        try:
            ec2.terminate_instances(InstanceIds=ids)
        except Exception:  # noqa: BLE001 - the lab's teardown removes the domains anyway
            pass


def wait_for(check: Any, timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s (last: {last!r})")


def console(ec2: Any, instance_id: str) -> str:
    return ec2.get_console_output(InstanceId=instance_id).get("Output") or ""


def console_line(ec2: Any, instance_id: str, pattern: str, timeout: float = BOOT_TIMEOUT,
                 after: int = 0) -> re.Match[str]:
    """The first console line matching `pattern` among those after the first `after` matches."""
    def found() -> re.Match[str] | None:
        matches = list(re.finditer(pattern, console(ec2, instance_id)))
        return matches[after] if len(matches) > after else None
    return wait_for(found, timeout, f"{instance_id}'s console line {pattern!r}")  # type: ignore[no-any-return]


def described(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]  # type: ignore[no-any-return]


def virsh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", "qemu:///system", *argv], capture_output=True, text=True,
                          timeout=30)


def virsh_names() -> list[str]:
    return virsh("list", "--all", "--name").stdout.split()


def domain_state(name: str) -> str:
    done = virsh("domstate", name)
    return done.stdout.strip() if done.returncode == 0 else "absent"


def qemu_nbd_pids(volume_id: str) -> list[int]:
    """qemu-nbd processes serving `volume_id`, in any namespace."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-nbd") and f"--export-name={volume_id}".encode() in argv:
            pids.append(int(entry.name))
    return pids


def instance_folder(made: Lab, instance_id: str) -> Path | None:
    return next(made.home.glob(f"instances/*/{instance_id}"), None)


def served_hosts(made: Lab) -> list[Path]:
    """The DHCP host files of the CC's dnsmasq processes that run (a stopped one's file may
    stay behind, read by nobody)."""
    served = []
    for hosts in made.root.rglob("dnsmasq-*.hosts"):
        try:
            pid = int(hosts.with_suffix(".pid").read_text().strip())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z":    # a daemon's zombie lingers where nobody reaps orphans
            served.append(hosts)
    return served


def mentions(text: str, address: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(address)}(?![\d])", text) is not None


def volume_state(ec2: Any, volume_id: str) -> str:
    return str(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"])


def test_the_guests_boot_get_their_planned_address_by_dhcp_and_read_metadata_and_user_data(
        ec2: Any, guests: tuple[str, str]) -> None:
    for instance_id in guests:
        def running() -> dict[str, Any] | None:
            found = described(ec2, instance_id)
            assert found["State"]["Name"] in ("pending", "running"), found.get("StateReason")
            if found["State"]["Name"] != "running":
                return None
            # The cloud says running only once libvirt does: asked right after the first answer
            # that says so (a domain merely defined is "shut off").
            assert domain_state(instance_id) == "running"
            return found

        private = wait_for(running, BOOT_TIMEOUT, f"{instance_id} running")["PrivateIpAddress"]
        console_line(ec2, instance_id, r"EUCASIM-GUEST ready")
        output = console(ec2, instance_id)
        assert "EUCASIM-GUEST booted" in output
        address = re.search(r"EUCASIM-GUEST address (\S+)", output)
        assert address is not None and address.group(1).split("/")[0] == private, output
        assert f"EUCASIM-GUEST instance-id {instance_id}\n" in output.replace("\r", "")
        assert re.search(r"EUCASIM-GUEST user-data-ran 0 user-data says hello", output), output


def test_the_nc_formats_ephemeral_and_swap_and_the_guest_finds_them_where_metadata_says(
        lab: tuple[Lab, LabImages], ec2: Any, guests: tuple[str, str]) -> None:
    first = guests[0]
    output = console(ec2, first)
    assert "EUCASIM-GUEST block-device-mapping ephemeral0=sda2" in output
    assert "EUCASIM-GUEST block-device-mapping swap=sda3" in output
    folder = instance_folder(lab[0], first)
    assert folder is not None
    # The guest finds each disk by its SCSI unit (the kernel's sdX letters follow its scan
    # order), so the disk it mounted is checked by its size: the NC's file for that role.
    ephemeral = re.search(r"EUCASIM-GUEST ephemeral /dev/(\w+) mounted", output)
    swap = re.search(r"EUCASIM-GUEST swap /dev/(\w+) on", output)
    assert ephemeral is not None and swap is not None, output
    sizes = dict(pair.split(":") for pair in re.findall(r"EUCASIM-GUEST disks (.*)", output)[0].split())
    assert int(sizes[ephemeral.group(1)]) * 1024 == (folder / "ephemeral0.img").stat().st_size
    assert int(sizes[swap.group(1)]) * 1024 == (folder / "swap.img").stat().st_size

    def kind(name: str) -> str:
        return subprocess.run(["blkid", "-o", "value", "-s", "TYPE", str(folder / name)],
                              capture_output=True, text=True).stdout.strip()

    assert kind("ephemeral0.img") == "ext3"
    assert kind("swap.img") == "swap"
    assert (folder / "root.qcow2").is_file()


def test_eucasim_lab_guest_prints_the_tiny_guests_files_its_ramdisk_with_the_current_init(lab: tuple[Lab, LabImages]) -> None:
    """The files deploy/README.md has a real site upload (the lab registered the same)."""
    eucasim = Path(sys.executable).parent / "eucasim"
    done = subprocess.run([str(eucasim), "lab", "guest", "--guest-cache", str(DEFAULT_GUEST_CACHE)],
                          capture_output=True, text=True, timeout=120, check=True)
    printed = [Path(line) for line in done.stdout.split()]
    assert [p.name for p in printed] == ["vmlinuz", "initrd.gz", "root.img"]
    assert all(p.parent == DEFAULT_GUEST_CACHE and p.stat().st_size > 0 for p in printed)
    # The ramdisk carries the current /init (repacked on each build, the same bytes each time).
    init = Path(__file__).parents[2].joinpath("services/lab/guest_init.sh").read_bytes()
    with gzip.open(printed[1]) as ramdisk:
        assert init in ramdisk.read()


def fetch_from_internet(made: Lab, address: str) -> str | None:
    done = made.topology.run("inet", "timeout", "3", "busybox", "wget", "-qO-", f"http://{address}/",
                             check=False, timeout=10)
    return done.stdout if done.returncode == 0 else None


def test_an_elastic_ip_answers_http_once_the_group_allows_it_and_outbound_traffic_leaves_with_it(
        lab: tuple[Lab, LabImages], ec2: Any, guests: tuple[str, str], listener: Path) -> None:
    made, first = lab[0], guests[0]
    address = ec2.allocate_address(Domain="standard")["PublicIp"]
    ec2.associate_address(InstanceId=first, PublicIp=address)
    # The CC has applied the association once fe's DNAT names the address; only then does a
    # refused fetch mean the group's rules, not a plan still on its way.
    wait_for(lambda: address in made.topology.run("fe", "iptables", "-t", "nat", "-S").stdout,
             60, f"the DNAT for {address} in fe")
    assert fetch_from_internet(made, address) is None

    ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=80, ToPort=80,
                                         CidrIp="0.0.0.0/0")
    page = wait_for(lambda: fetch_from_internet(made, address), 60, f"HTTP on {address}")
    assert page.strip() == f"GUEST {first} says hello"

    # The user-data loop's fetches, as the internet sees them: from the elastic IP (SNAT).
    wait_for(lambda: re.search(rf"^{re.escape(address)} .*GET /outbound", listener.read_text(), re.M),
             60, f"a fetch from {address} in the internet's log")


def test_a_volume_over_nbd_carries_what_one_guest_wrote_to_another_and_through_a_snapshot(
        ec2: Any, guests: tuple[str, str]) -> None:
    first, second = guests
    volume = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    wait_for(lambda: volume_state(ec2, volume) == "available", 120, f"{volume} available")

    ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")
    added = console_line(ec2, first, r"EUCASIM-GUEST disk-added (\S+) (\d+) serial=(\S*)", 120)
    disk = added.group(1)
    assert int(added.group(2)) * 512 == 1024 ** 3
    assert added.group(3) == volume
    console_line(ec2, first, rf"EUCASIM-GUEST disk-marked {disk} EUCASIM-MARKER {first} {volume}", 60)
    wait_for(lambda: volume_state(ec2, volume) == "in-use", 60, f"{volume} in-use")
    assert qemu_nbd_pids(volume), "the volume is attached, so the SC serves it over NBD"

    ec2.detach_volume(VolumeId=volume)
    console_line(ec2, first, rf"EUCASIM-GUEST disk-removed {disk}", 120)
    wait_for(lambda: volume_state(ec2, volume) == "available", 120, f"{volume} available again")
    wait_for(lambda: not qemu_nbd_pids(volume), 60, f"no qemu-nbd serving {volume}")

    ec2.attach_volume(VolumeId=volume, InstanceId=second, Device="/dev/sdf")
    console_line(ec2, second, rf"EUCASIM-GUEST disk-marker \S+ EUCASIM-MARKER {first} {volume}", 120)

    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"] == "completed",
             180, f"{snapshot} completed")
    restored = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=snapshot)["VolumeId"]
    wait_for(lambda: volume_state(ec2, restored) == "available", 180, f"{restored} available")
    ec2.attach_volume(VolumeId=restored, InstanceId=second, Device="/dev/sdg")
    # The copy holds what `first` wrote on the original (its serial is the original's id).
    restored_line = console_line(ec2, second, rf"EUCASIM-GUEST disk-added (\S+) \d+ serial={restored}", 120)
    console_line(ec2, second, rf"EUCASIM-GUEST disk-marker {restored_line.group(1)} "
                              rf"EUCASIM-MARKER {first} {volume}", 60)


def test_rebooting_a_guest_boots_it_again(ec2: Any, guests: tuple[str, str]) -> None:
    first = guests[0]
    boots = console(ec2, first).count("EUCASIM-GUEST booted")
    ec2.reboot_instances(InstanceIds=[first])
    console_line(ec2, first, r"EUCASIM-GUEST booted", 180, after=boots)
    console_line(ec2, first, r"EUCASIM-GUEST ready", 180, after=boots)
    assert described(ec2, first)["State"]["Name"] == "running"
    assert domain_state(first) == "running"


def test_a_killed_qemu_turns_the_instance_terminated_with_a_reason_that_says_so(
        lab: tuple[Lab, LabImages], ec2: Any, guests: tuple[str, str]) -> None:
    first = guests[0]
    pid = int(Path(f"/run/libvirt/qemu/{first}.pid").read_text().strip())
    assert b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes()
    os.kill(pid, signal.SIGKILL)

    def terminated() -> dict[str, Any] | None:
        found = described(ec2, first)
        return found if found["State"]["Name"] == "terminated" else None

    # The NC's watch pass notices within NC_POLLING_FREQUENCY (2 s in the lab); the bound is
    # generous for a loaded machine, and the reason is what is checked.
    found = wait_for(terminated, 60, f"{first} terminated", every=0.5)
    reason = found["StateReason"]
    assert reason["Code"] == "Server.InternalError"
    assert "crashed" in reason["Message"] and "killed or died" in reason["Message"], reason
    wait_for(lambda: first not in virsh_names(), 60, f"{first}'s domain gone")
    folder = instance_folder(lab[0], first)
    assert folder is None or not (folder / "root.qcow2").exists()


def test_terminating_a_guest_frees_its_domain_disks_exports_and_rules(
        lab: tuple[Lab, LabImages], ec2: Any, guests: tuple[str, str]) -> None:
    made, second = lab[0], guests[1]
    instance = described(ec2, second)
    private = instance["PrivateIpAddress"]
    volumes = [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]
               if any(a["InstanceId"] == second for a in v.get("Attachments", []))]
    assert len(volumes) == 2 and all(qemu_nbd_pids(v) for v in volumes)
    assert second in virsh_names() and instance_folder(made, second) is not None
    assert mentions(made.topology.run("fe", "iptables-save").stdout, private)
    assert any(mentions(h.read_text(), private) for h in served_hosts(made))

    ec2.terminate_instances(InstanceIds=[second])
    wait_for(lambda: described(ec2, second)["State"]["Name"] == "terminated", 120, f"{second} terminated")
    assert second not in virsh_names()
    assert instance_folder(made, second) is None
    for volume in volumes:
        wait_for(lambda: volume_state(ec2, volume) == "available", 120, f"{volume} available")
        wait_for(lambda: not qemu_nbd_pids(volume), 60, f"no qemu-nbd serving {volume}")
    wait_for(lambda: not mentions(made.topology.run("fe", "iptables-save").stdout, private), 60,
             f"fe's rules no longer naming {private}")
    wait_for(lambda: not any(mentions(h.read_text(), private) for h in served_hosts(made)),
             60, f"no DHCP host entry for {private} in a running dnsmasq")
