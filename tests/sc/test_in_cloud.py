"""The SC as `eucasim up` starts it, beside the rest of the cloud: it finds the cloud admin's
key the CLC wrote, keeps a snapshot in the cloud's Walrus and restores it. Volumes and
snapshots are asked of the CLC (what the SC holds and the CLC never recorded is a stray the
CLC deletes); their bytes are looked at where the SC keeps them."""

from __future__ import annotations

from pathlib import Path

from services.bundles.upload import s3_client
from services.messages.storage import (SC_EXPORT_ROUTE, SC_VOLUME_ROUTE, ExportVolume,
                                       VolumeExportInfo, VolumeInfo)
from tests.sc.conftest import same_bytes
from tests.support.cloud import running_cloud
from tests.support.waiting import wait_for

FAST = {"Delay": 0.5, "MaxAttempts": 120}


def test_the_clouds_sc_snapshots_into_the_clouds_walrus(tmp_path: Path) -> None:
    with running_cloud(tmp_path / "cloud", nodes=1) as cloud:
        assert "sc" in [s.spec.name for s in cloud.services]
        ec2 = cloud.ec2()
        zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        sc = cloud.internal("sc")
        try:
            volume_id = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
            ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
            volume = sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo)
            assert volume.path.startswith(str(tmp_path / "cloud" / "volumes"))
            with open(volume.path, "r+b") as f:
                f.seek(123 * 1024 * 1024)
                f.write(b"kept in walrus" * 1000)
            snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
            ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=FAST)
            # The admin sees the snapshot's bucket through the cloud's S3 endpoint.
            s3 = s3_client(cloud.config.service_url("walrus"), cloud.admin, cloud.config.REGION)
            assert f"snapset-{snapshot_id}" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
            restored_id = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone=zone)["VolumeId"]
            ec2.get_waiter("volume_available").wait(VolumeIds=[restored_id], WaiterConfig=FAST)
            restored = sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=restored_id), response=VolumeInfo)
            assert same_bytes(Path(volume.path), Path(restored.path))
            # An export the CLC never learnt of (an attach whose answer was lost while the SC
            # restarted) is taken away by the CLC's settle pass; the volume stays available.
            sc.call("POST", SC_EXPORT_ROUTE.format(volume_id=restored_id),
                    ExportVolume(node="node-lost"), response=VolumeExportInfo)
            wait_for(lambda: sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=restored_id),
                                     response=VolumeInfo).exports == 0,
                     30, "the CLC to remove the export it never asked for")
            described = ec2.describe_volumes(VolumeIds=[restored_id])["Volumes"][0]
            assert (described["State"], described["Attachments"]) == ("available", [])
        finally:
            sc.close()
