"""The SC as `eucasim up` starts it, beside the rest of the cloud: it finds the cloud admin's
key the CLC wrote, keeps a snapshot in the cloud's Walrus and restores it."""

from __future__ import annotations

from pathlib import Path

from services.bundles.upload import s3_client
from services.ids import new_id
from services.messages.storage import (SC_SNAPSHOT_ROUTE, SC_SNAPSHOTS_ROUTE, SC_VOLUME_ROUTE,
                                       SC_VOLUMES_ROUTE, CreateSnapshot, CreateVolume, SnapshotInfo,
                                       VolumeInfo)
from tests.sc.conftest import same_bytes
from tests.support.cloud import running_cloud
from tests.support.waiting import wait_for


def test_the_clouds_sc_snapshots_into_the_clouds_walrus(tmp_path: Path) -> None:
    with running_cloud(tmp_path / "cloud", nodes=1) as cloud:
        assert "sc" in [s.spec.name for s in cloud.services]
        sc = cloud.internal("sc")
        try:
            volume = sc.call("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"), size_gib=1),
                             VolumeInfo)
            assert volume.path.startswith(str(tmp_path / "cloud" / "volumes"))
            with open(volume.path, "r+b") as f:
                f.seek(123 * 1024 * 1024)
                f.write(b"kept in walrus" * 1000)
            snap = sc.call("POST", SC_SNAPSHOTS_ROUTE,
                           CreateSnapshot(snapshot_id=new_id("snap"), volume_id=volume.volume_id),
                           SnapshotInfo)

            def completed() -> bool:
                info = sc.call("GET", SC_SNAPSHOT_ROUTE.format(snapshot_id=snap.snapshot_id),
                               response=SnapshotInfo)
                assert info.state != "error", info.reason
                return info.state == "completed"

            wait_for(completed, 60, "the snapshot in the cloud's Walrus")
            # The admin sees the snapshot's bucket through the cloud's S3 endpoint.
            s3 = s3_client(cloud.config.service_url("walrus"), cloud.admin, cloud.config.REGION)
            assert f"snapset-{snap.snapshot_id}" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
            restored = sc.call("POST", SC_VOLUMES_ROUTE,
                               CreateVolume(volume_id=new_id("vol"), snapshot_id=snap.snapshot_id),
                               VolumeInfo)

            def available() -> bool:
                info = sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=restored.volume_id),
                               response=VolumeInfo)
                assert info.state != "error", info.reason
                return info.state == "available"

            wait_for(available, 60, "the restored volume")
            assert same_bytes(Path(volume.path), Path(restored.path))
        finally:
            sc.close()

