"""The AWS CLI and `eucasim snapshot wait|show` against the cloud as `make up` starts it:
create, describe and filter a volume, snapshot it, follow the upload with the progress bar,
show the snapshot with its consistency, restore it and compare the bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ebs.test_attach_and_snapshots import PATTERN, read_at, sc_info, write_pattern
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("ebs-cli"), nodes=1) as c:
        yield c


def aws(cloud: Cloud, *args: str) -> dict:
    result = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=cloud.cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def aws_error(cloud: Cloud, *args: str) -> str:
    result = subprocess.run([AWS, "ec2", *args], env=cloud.cli_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    return result.stderr


def eucasim(cloud: Cloud, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EUCASIM_HOME": str(cloud.home), "COLUMNS": "200",
           "EUCASIM_CONF": str(cloud.home / "none.conf")}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def state_of(cloud: Cloud, volume_id: str) -> str:
    return str(aws(cloud, "describe-volumes", "--volume-ids", volume_id)["Volumes"][0]["State"])


def test_volumes_and_snapshots_with_the_aws_cli(cloud: Cloud) -> None:
    made = aws(cloud, "create-volume", "--availability-zone", "zone-1", "--size", "1",
               "--volume-type", "gp2", "--tag-specifications",
               "ResourceType=volume,Tags=[{Key=app,Value=cli}]")
    volume_id = made["VolumeId"]
    wait_for(lambda: state_of(cloud, volume_id) == "available", 60, "the volume available")
    found = aws(cloud, "describe-volumes", "--filters", "Name=tag:app,Values=cli",
                "Name=volume-type,Values=gp2")["Volumes"]
    assert [v["VolumeId"] for v in found] == [volume_id] and found[0]["Iops"] == 100
    # A plain describe-volumes: the CLI sends MaxResults=1000, which EC2 takes as 500.
    assert volume_id in [v["VolumeId"] for v in aws(cloud, "describe-volumes")["Volumes"]]
    assert "InvalidVolume.NotFound" in aws_error(cloud, "delete-volume", "--volume-id", "vol-12345678")
    assert "InvalidParameterValue" in aws_error(cloud, "create-volume", "--availability-zone",
                                                "zone-1", "--size", "99999")

    write_pattern(Path(sc_info(cloud, volume_id).path), 8 * 1024 * 1024)
    snap = aws(cloud, "create-snapshot", "--volume-id", volume_id, "--description", "from the cli")
    waited = eucasim(cloud, "snapshot", "wait", snap["SnapshotId"], "--every", "0.2")
    assert waited.returncode == 0, waited.stderr
    assert f"{snap['SnapshotId']} completed" in waited.stdout and "100%" in waited.stderr
    shown = eucasim(cloud, "snapshot", "show", snap["SnapshotId"])
    assert shown.returncode == 0, shown.stderr
    assert "crash-consistent" in shown.stdout and "completed" in shown.stdout
    assert "from the cli" in shown.stdout and "its owner only" in shown.stdout
    missing = eucasim(cloud, "snapshot", "show", "snap-12345678")
    assert missing.returncode == 1 and "InvalidSnapshot.NotFound" in missing.stderr

    listed = aws(cloud, "describe-snapshots", "--owner-ids", "self", "--filters",
                 f"Name=volume-id,Values={volume_id}")["Snapshots"]
    assert [(s["SnapshotId"], s["State"], s["Progress"]) for s in listed] == [
        (snap["SnapshotId"], "completed", "100%")]
    restored = aws(cloud, "create-volume", "--availability-zone", "zone-1", "--snapshot-id",
                   snap["SnapshotId"])["VolumeId"]
    wait_for(lambda: state_of(cloud, restored) == "available", 60, "the restored volume")
    assert read_at(Path(sc_info(cloud, restored).path), 8 * 1024 * 1024, len(PATTERN)) == PATTERN
    for done in (volume_id, restored):
        aws(cloud, "delete-volume", "--volume-id", done)
    aws(cloud, "delete-snapshot", "--snapshot-id", snap["SnapshotId"])
