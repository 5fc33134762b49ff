"""Real mode (issue 11): how long the cloud takes to boot the lab's tiny guest and to hot-plug a
volume into it, beside the same guest started by hand with `virsh create` of the same XML, in
the same run and lab. Run as root:

    .venv/bin/python benchmarks/real_boot.py --rounds 5

Each round:
1. cloud boot: RunInstances → the guest's console says it read its instance id from
   169.254.169.254 (`EUCASIM-GUEST instance-id i-…`), i.e. images fetched, disks made and
   formatted, domain defined and started, DHCP and the metadata DNAT answered;
2. cloud attach: AttachVolume (CLC → SC qemu-nbd export → CC → NC hot-plug) → the guest's disk
   agent prints `disk-added`;
3. the instance's domain is paused and its XML (`virsh dumpxml --inactive`) started again by
   hand as a transient domain: renamed, fresh copies of its disks and console, no tap name, the
   same MAC, so the same DHCP entry and metadata answer; hand boot: `virsh create` → the same
   console line;
4. hand attach: a qemu-nbd of our own in the front end serves a blank 1 GiB file and `virsh
   attach-device --live` hot-plugs the cloud's own `<disk>` element pointed at it → `disk-added`.

The console files are polled on disk every 20 ms (the cloud's own GetConsoleOutput would add its
round trip). Everything it starts goes away at the end, even on failure or SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.support import main_guard  # noqa: E402
from services import credentials  # noqa: E402
from services.lab.cloud import DEFAULT_GUEST_CACHE, Lab  # noqa: E402
from services.lab.topology import FE_HOST_SIDE  # noqa: E402

POLL = 0.02
HAND_NBD_PORT = 11809     # outside the SC's SC_NBD_PORTS
TIMEOUT = 300.0


def virsh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", "qemu:///system", *argv], capture_output=True, text=True,
                          timeout=60, check=check)


def until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(POLL)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def has_line(path: Path, pattern: str) -> bool:
    try:
        return re.search(pattern, path.read_text(errors="replace")) is not None
    except FileNotFoundError:
        return False


class Bench:
    def __init__(self, lab: Lab, image_id: str) -> None:
        self.lab = lab
        self.image_id = image_id
        creds = credentials.read(lab.home)
        self.ec2 = boto3.client("ec2", endpoint_url=creds.endpoints.ec2, region_name=creds.endpoints.region,
                                aws_access_key_id=creds.key.access_key,
                                aws_secret_access_key=creds.key.secret_key,
                                config=Config(retries={"max_attempts": 2}))
        self.scratch = lab.root / "bench"
        self.scratch.mkdir(mode=0o755, exist_ok=True)
        self.hand_domains: list[str] = []
        self.nbd: subprocess.Popen[bytes] | None = None

    def folder(self, instance_id: str) -> Path:
        return until(lambda: next(self.lab.home.glob(f"instances/*/{instance_id}"), None),
                     f"{instance_id}'s folder")

    def volume(self) -> str:
        volume = self.ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
        until(lambda: self.ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
              f"{volume} available")
        return volume

    def round(self, n: int) -> dict[str, float]:
        volume = self.volume()
        started = time.monotonic()
        instance_id = self.ec2.run_instances(ImageId=self.image_id, MinCount=1, MaxCount=1,
                                             InstanceType="m1.small")["Instances"][0]["InstanceId"]
        log = self.folder(instance_id) / "console.log"
        until(lambda: has_line(log, rf"EUCASIM-GUEST instance-id {instance_id}"), "cloud boot")
        cloud_boot = time.monotonic() - started
        until(lambda: has_line(log, "EUCASIM-GUEST ready"), "cloud guest ready")

        started = time.monotonic()
        self.ec2.attach_volume(VolumeId=volume, InstanceId=instance_id, Device="/dev/sdf")
        until(lambda: has_line(log, "EUCASIM-GUEST disk-added"), "cloud attach")
        cloud_attach = time.monotonic() - started

        xml = virsh("dumpxml", "--inactive", instance_id).stdout
        virsh("suspend", instance_id)
        hand_boot, hand_attach = self.by_hand(n, xml, volume)

        self.ec2.terminate_instances(InstanceIds=[instance_id])
        until(lambda: self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
              ["Instances"][0]["State"]["Name"] == "terminated", f"{instance_id} terminated")
        until(lambda: self.ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
              f"{volume} available")
        self.ec2.delete_volume(VolumeId=volume)
        return {"cloud_boot": cloud_boot, "hand_boot": hand_boot,
                "cloud_attach": cloud_attach, "hand_attach": hand_attach}

    def by_hand(self, n: int, xml: str, volume: str) -> tuple[float, float]:
        """The instance's own definition, started and hot-plugged by hand."""
        here = self.scratch / f"hand-{n}"
        here.mkdir(mode=0o755)
        domain = ET.fromstring(xml)
        name = f"eucasim-hand-{n}"
        domain.find("name").text = name  # type: ignore[union-attr]
        for drop in ("uuid", "metadata"):
            element = domain.find(drop)
            if element is not None:
                domain.remove(element)
        volume_disk = None
        devices = domain.find("devices")
        assert devices is not None
        for disk in devices.findall("disk"):
            if (disk.findtext("serial") or "") == volume:
                volume_disk = disk
                devices.remove(disk)
                continue
            source = disk.find("source")
            assert source is not None
            original = Path(source.get("file", ""))
            copy = here / original.name
            if original.suffix == ".qcow2":
                backing = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(original)],
                                                    capture_output=True, text=True, check=True).stdout)
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                backing["backing-filename"], str(copy)], check=True)
            else:
                subprocess.run(["cp", "--sparse=always", str(original), str(copy)], check=True)
            source.set("file", str(copy))
        target = devices.find("interface/target")
        if target is not None:
            devices.find("interface").remove(target)  # type: ignore[union-attr]
        log = here / "console.log"
        log.touch()
        for element in devices.findall("serial/source") + devices.findall("console/source"):
            element.set("path", str(log))
        (here / "domain.xml").write_text(ET.tostring(domain, encoding="unicode"))

        started = time.monotonic()
        self.hand_domains.append(name)
        virsh("create", str(here / "domain.xml"))
        until(lambda: has_line(log, r"EUCASIM-GUEST instance-id i-"), "hand boot")
        hand_boot = time.monotonic() - started
        until(lambda: has_line(log, "EUCASIM-GUEST ready"), "hand guest ready")

        assert volume_disk is not None, "the cloud's domain has no disk for the volume"
        blank = here / "volume.raw"
        with blank.open("wb") as stream:
            stream.truncate(1024 ** 3)
        self.nbd = subprocess.Popen(
            [*self.lab.topology.enter("fe"), "qemu-nbd", "--format=raw", "--persistent", "--shared=8",
             "--cache=none", f"--bind={FE_HOST_SIDE}", f"--port={HAND_NBD_PORT}",
             f"--export-name=hand-{n}", str(blank)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until(lambda: self.lab.topology.run("fe", "ss", "-ltn", check=False).stdout.count(
            f":{HAND_NBD_PORT} ") > 0, "hand qemu-nbd listening", 30)
        source = volume_disk.find("source")
        assert source is not None
        source.set("name", f"hand-{n}")
        source.find("host").set("port", str(HAND_NBD_PORT))  # type: ignore[union-attr]
        volume_disk.find("serial").text = f"hand-{n}"  # type: ignore[union-attr]
        (here / "disk.xml").write_text(ET.tostring(volume_disk, encoding="unicode"))
        started = time.monotonic()
        virsh("attach-device", name, str(here / "disk.xml"), "--live")
        until(lambda: has_line(log, "EUCASIM-GUEST disk-added"), "hand attach")
        hand_attach = time.monotonic() - started
        self.end_hand(name)
        return hand_boot, hand_attach

    def end_hand(self, name: str) -> None:
        virsh("destroy", name, check=False)
        if name in self.hand_domains:
            self.hand_domains.remove(name)
        if self.nbd is not None:
            self.nbd.terminate()
            try:
                self.nbd.wait(10)
            except subprocess.TimeoutExpired:
                self.nbd.kill()
                self.nbd.wait()
            self.nbd = None

    def close(self) -> None:
        for name in list(self.hand_domains):
            self.end_hand(name)
        if self.nbd is not None:
            self.end_hand("")
        shutil.rmtree(self.scratch, ignore_errors=True)


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    medians["boot_ratio"] = medians["cloud_boot"] / medians["hand_boot"]
    medians["attach_ratio"] = medians["cloud_attach"] / medians["hand_attach"]
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main_guard()
    if os.geteuid() != 0:
        sys.exit("real mode runs as root")
    lab = Lab(Path("/var/tmp") / f"eucasim-bench-{os.getpid()}", DEFAULT_GUEST_CACHE,
              tag=f"eb{os.getpid() % 100000}")
    bench: Bench | None = None
    rounds: list[dict[str, float]] = []
    try:
        started = time.monotonic()
        images = lab.up(say=lambda line: print(line, file=sys.stderr))
        print(f"lab up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        bench = Bench(lab, images.image_id)
        for n in range(args.rounds):
            rounds.append(bench.round(n))
            print(f"round {n + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in rounds[-1].items()),
                  file=sys.stderr)
    finally:
        if bench is not None:
            bench.close()
        lab.down()
    medians = summary(rounds)
    load = os.getloadavg()
    print(f"rounds: {len(rounds)}, load average {load[0]:.1f}")
    print(f"RunInstances -> first metadata read: cloud {medians['cloud_boot']:.2f} s, "
          f"virsh create {medians['hand_boot']:.2f} s, ratio {medians['boot_ratio']:.2f}x (median)")
    print(f"AttachVolume -> disk in the guest:    cloud {medians['cloud_attach']:.2f} s, "
          f"virsh attach-device {medians['hand_attach']:.2f} s, ratio {medians['attach_ratio']:.2f}x (median)")
    print(json.dumps({"rounds": rounds, "medians": medians}))


if __name__ == "__main__":
    main()
