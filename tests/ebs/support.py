"""What the EBS tests against the whole cloud share: the SC's view of a volume and its exports,
the attachment as EC2 shows it, the instance's domain definition as the NC recorded it in the
request's trace (`eucasim trace`), and a node that stalls (its NC process stopped with SIGSTOP,
as a hung host would be, and always continued again)."""

from __future__ import annotations

import os
import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.cli_trace import gather
from services.messages.storage import (SC_EXPORTS_ROUTE, SC_VOLUME_ROUTE, VolumeExportInfo,
                                       VolumeExportList, VolumeInfo)
from services.tracing import TraceStep
from tests.ebs.test_volumes_boto3 import volume
from tests.support.cloud import Cloud
from tests.support.volume_data import FileData, VolumeData
from tests.support.waiting import wait_for

FAST = {"Delay": 0.5, "MaxAttempts": 120}
PATTERN = b"eucasim EBS pattern \x00\x01\x02\xff" * 4096


def sc_info(cloud: Cloud, volume_id: str) -> VolumeInfo:
    sc = cloud.internal("sc")
    try:
        return sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo)  # type: ignore[no-any-return]
    finally:
        sc.close()


def export_list(cloud: Cloud, volume_id: str) -> list[VolumeExportInfo]:
    sc = cloud.internal("sc")
    try:
        return sc.call("GET", SC_EXPORTS_ROUTE.format(volume_id=volume_id),  # type: ignore[no-any-return]
                       response=VolumeExportList).exports
    finally:
        sc.close()


def exports(cloud: Cloud, volume_id: str) -> list[str]:
    return [e.node for e in export_list(cloud, volume_id)]


def attachment(ec2: Any, volume_id: str) -> dict | None:
    found = volume(ec2, volume_id)["Attachments"]
    return found[0] if found else None


def wait_attached(ec2: Any, volume_id: str) -> dict:
    return wait_for(lambda: (a := attachment(ec2, volume_id)) and a["State"] == "attached" and a,  # type: ignore[no-any-return]
                    60, f"{volume_id} attached")


def write_pattern(path: Path | str, offset: int, data: VolumeData | None = None) -> None:
    """PATTERN into the volume at `path` (its locator: a file, or rbd:pool/image with `data`
    the cloud's RbdData)."""
    (data or FileData()).write(str(path), offset, PATTERN)


def read_at(path: Path | str, offset: int, length: int, data: VolumeData | None = None) -> bytes:
    return (data or FileData()).read(str(path), offset, length)


def request_id(answer: dict) -> str:
    return str(answer["ResponseMetadata"]["RequestId"])


def steps(cloud: Cloud, rid: str) -> list[TraceStep]:
    return gather(cloud.config, rid)[0]


def domain_disks(cloud: Cloud, rid: str, instance_id: str) -> dict[str, ET.Element]:
    """{serial: <disk>} of the instance's domain definition as the NC last recorded it for the
    request `rid` (after its attach or detach): the EBS volumes in it, by volume id."""
    recorded = wait_for(lambda: [s for s in steps(cloud, rid) if s.service == "nc"
                                 and s.detail.get("instance_id") == instance_id
                                 and "domain_xml" in s.detail], 30, f"the NC's steps for {rid}")
    root = ET.fromstring(recorded[-1].detail["domain_xml"])
    return {serial: disk for disk in root.iterfind("./devices/disk")
            if (serial := disk.findtext("serial"))}


def node_volumes(cloud: Cloud, instance_id: str) -> list[str]:
    """The volumes the instance's node reports attached (through the CC)."""
    return [a.volume_id for i in cloud.zone_instances().instances if i.instance_id == instance_id
            for a in i.volumes]


def nc_pid(cloud: Cloud) -> int:
    return next(s.process.pid for s in cloud.services if s.spec.name == "nc")


@contextmanager
def stalled_node(cloud: Cloud) -> Iterator[None]:
    """Every simulated node of the cloud stops answering (their NC process is stopped) until
    the block ends; calls sent meanwhile wait in its socket, as with a hung host."""
    pid = nc_pid(cloud)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
