"""Snapshots into a real Walrus and restores out of it: point in time, only the written parts
uploaded, progress to 100 %, bytes restored exactly (in another zone too, on the other
backend), and a corrupted part refused by name. The `sc` fixture runs each test on sparse
files and on RBD images; on RBD a volume made from a snapshot still in the pool is a clone."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
from pathlib import Path

import crc32c
import pytest
from botocore.exceptions import ClientError

from services.ids import new_id
from services.messages.storage import (SC_SNAPSHOT_ROUTE, SC_SNAPSHOTS_ROUTE, SC_VOLUME_ROUTE,
                                       SC_VOLUMES_ROUTE, CreateSnapshot, CreateVolume,
                                       SnapshotInfo, SnapshotList, SnapshotManifest, VolumeInfo)
from tests.sc.conftest import backend_settings, same_bytes, volume_file
from tests.sc.process import ScProcess, Walrus, sc_process
from tests.support.servers import refused_port
from tests.support.waiting import wait_for

MIB = 1024 * 1024
GIB = 1024 * MIB
PATTERN = hashlib.sha256(b"eucasim").digest() * (MIB // 32)  # 1 MiB, no two aligned blocks alike


def new_volume(sc: ScProcess, size: int | None = 1, snapshot_id: str | None = None) -> VolumeInfo:
    body = CreateVolume(volume_id=new_id("vol"), size_gib=size, snapshot_id=snapshot_id)
    return sc.call("POST", SC_VOLUMES_ROUTE, body, VolumeInfo)  # type: ignore[no-any-return]


def snapshot(sc: ScProcess, volume_id: str) -> SnapshotInfo:
    body = CreateSnapshot(snapshot_id=new_id("snap"), volume_id=volume_id)
    return sc.call("POST", SC_SNAPSHOTS_ROUTE, body, SnapshotInfo)  # type: ignore[no-any-return]


def describe_snapshot(sc: ScProcess, snapshot_id: str) -> SnapshotInfo:
    return sc.call("GET", SC_SNAPSHOT_ROUTE.format(snapshot_id=snapshot_id), response=SnapshotInfo)  # type: ignore[no-any-return]


def describe_volume(sc: ScProcess, volume_id: str) -> VolumeInfo:
    return sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo)  # type: ignore[no-any-return]


def settled_snapshot(sc: ScProcess, snapshot_id: str, seen: list[int] | None = None) -> SnapshotInfo:
    def done() -> SnapshotInfo | None:
        info = describe_snapshot(sc, snapshot_id)
        if seen is not None:
            seen.append(info.progress)
        return info if info.state != "pending" else None
    return wait_for(done, 120, f"{snapshot_id} to finish", every=0.02)


def settled_volume(sc: ScProcess, volume_id: str) -> VolumeInfo:
    def done() -> VolumeInfo | None:
        info = describe_volume(sc, volume_id)
        return info if info.state != "creating" else None
    return wait_for(done, 120, f"{volume_id} to be restored")


def write(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def rbd_snapshots(sc: ScProcess, volume_id: str) -> list[str]:
    """`image@snapshot` of every RBD snapshot of the volume ([] on the file backend)."""
    if sc.backend != "rbd":
        return []
    names = sc.data.snapshots(sc.locator(volume_id))  # type: ignore[attr-defined]
    return [f"{volume_id}@{name}" for name in names]


def keys_in(walrus: Walrus, bucket: str) -> dict[str, int]:
    listed = walrus.s3().list_objects_v2(Bucket=bucket)
    return {item["Key"]: item["Size"] for item in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def taken(sc: ScProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[VolumeInfo, SnapshotInfo, Path, list[int]]:
    """A 1 GiB sparse volume with a known pattern in three places and a megabyte of written
    zeros, snapshotted; `expected` is a copy of the volume as it was at that moment."""
    volume = new_volume(sc, 1)
    path = sc.locator(volume.volume_id)
    sc.data.write(path, 0, PATTERN)                   # part 0
    sc.data.write(path, 500 * MIB + 123, PATTERN)     # parts 500 and 501, not aligned
    sc.data.write(path, 700 * MIB, bytes(MIB))        # written, but zeros: nothing to upload
    sc.data.write(path, GIB - 4096, PATTERN[:4096])   # the last part
    expected = tmp_path_factory.mktemp("expected") / "volume.raw"
    with sc.data.local_copy(path) as copy:
        subprocess.run(["cp", "--sparse=always", str(copy), str(expected)], check=True)
    taken = snapshot(sc, volume.volume_id)
    # Right after the point-in-time step the guest writes on; the snapshot must not see it.
    sc.data.write(path, 0, b"written after the snapshot" * 1000)
    seen = [taken.progress]
    settled_snapshot(sc, taken.snapshot_id, seen)
    return volume, taken, expected, seen


def test_a_snapshot_uploads_only_the_written_parts_with_progress_to_100(
        sc: ScProcess, walrus: Walrus, taken: tuple[VolumeInfo, SnapshotInfo, Path, list[int]]) -> None:
    volume, first, _, seen = taken
    assert (first.state, first.progress, first.volume_id) == ("pending", 0, volume.volume_id)
    assert first.freeze_method in (("reflink", "extent-copy") if sc.backend == "file" else ("rbd-snapshot",))
    info = describe_snapshot(sc, first.snapshot_id)
    assert (info.state, info.progress) == ("completed", 100)
    assert seen == sorted(seen) and seen[-1] == 100
    assert info.bucket == f"snapset-{first.snapshot_id}"
    keys = keys_in(walrus, info.bucket)
    # Only data is sent, packed into parts of at most 1 MiB: the pattern at 0, the unaligned
    # one at 500 MiB (a block more than 1 MiB, so its last block shares a part with the
    # volume's last block). The written zeros at 700 MiB are left out, and so is every hole.
    manifest = SnapshotManifest.model_validate_json(
        walrus.s3().get_object(Bucket=info.bucket, Key="manifest.json")["Body"].read())
    assert (manifest.size_bytes, manifest.part_size, manifest.volume_id) == (GIB, MIB, volume.volume_id)
    if sc.backend == "file":
        # The file system's data extents are whole 4 KiB blocks.
        assert set(keys) == {"manifest.json", "part-00000000", "part-00000001", "part-00000002"}
        assert sum(size for key, size in keys.items() if key.startswith("part-")) == 2 * MIB + 8192
        assert [[(e.offset, e.length) for e in p.extents] for p in manifest.parts] == \
            [[(0, MIB)], [(500 * MIB, MIB)], [(501 * MIB, 4096), (GIB - 4096, 4096)]]
    else:
        # RBD reports its extents at the object store's grain (memstore: from an object's start
        # to its last written byte), and the upload drops the pieces of them that are all
        # zeros: what is sent covers every write, leaves out holes and the written zeros, and
        # is at most a piece (1 MiB) more per written run.
        extents = sorted((e.offset, e.offset + e.length) for p in manifest.parts for e in p.extents)
        assert all(p.length <= MIB for p in manifest.parts) and len(manifest.parts) <= 5
        for lo, hi in [(0, MIB), (500 * MIB + 123, 501 * MIB + 123), (GIB - 4096, GIB)]:
            assert sum(min(hi, e) - max(lo, s) for s, e in extents if s < hi and e > lo) == hi - lo
        assert not [(s, e) for s, e in extents if s < 701 * MIB and e > 700 * MIB]
        assert not [(s, e) for s, e in extents if s < 500 * MIB and e > 2 * MIB]
        assert 2 * MIB + 4096 < sum(keys[p.key] for p in manifest.parts) <= 5 * MIB
    for part in manifest.parts:
        body = walrus.s3().get_object(Bucket=info.bucket, Key=part.key)["Body"].read()
        assert base64.b64decode(part.crc32c or "") == crc32c.crc32c(body).to_bytes(4, "big")
        # The SC sent that CRC32C with the part and Walrus checked it on receipt.
        head = walrus.s3().head_object(Bucket=info.bucket, Key=part.key, ChecksumMode="ENABLED")
        assert head["ChecksumCRC32C"] == part.crc32c
    assert info.parts == len(manifest.parts) and info.uploaded_bytes == info.data_bytes
    # A frozen file is dropped once the snapshot is completed; an RBD snapshot stays in the
    # pool, to clone from.
    wait_for(lambda: list((sc.volumes / "staging").glob("*")) == [], 30,
             "the frozen copy to be dropped")
    if sc.backend == "rbd":
        assert f"{volume.volume_id}@{first.snapshot_id}" in rbd_snapshots(sc, volume.volume_id)
    listed = sc.call("GET", SC_SNAPSHOTS_ROUTE, response=SnapshotList)
    assert first.snapshot_id in [s.snapshot_id for s in listed.snapshots]


def test_a_volume_restored_from_a_snapshot_has_its_bytes_exactly(
        sc: ScProcess, taken: tuple[VolumeInfo, SnapshotInfo, Path, list[int]]) -> None:
    _, snap, expected, _ = taken
    restored = new_volume(sc, size=1, snapshot_id=snap.snapshot_id)
    assert restored.snapshot_id == snap.snapshot_id
    # From Walrus on files; on RBD a copy-on-write clone of the snapshot still in the pool,
    # whole at once.
    assert restored.state == ("creating" if sc.backend == "file" else "available")
    done = settled_volume(sc, restored.volume_id)
    assert (done.state, done.progress, done.size_gib) == ("available", 100, 1)
    path = sc.locator(restored.volume_id)
    with sc.data.local_copy(path) as copy:
        assert same_bytes(copy, expected)
    # Restored sparse: only what the snapshot held takes room.
    assert sc.data.allocated(path) <= 8 * MIB


def test_a_larger_volume_from_a_snapshot_holds_it_and_zeros_after(
        sc: ScProcess, taken: tuple[VolumeInfo, SnapshotInfo, Path, list[int]]) -> None:
    _, snap, expected, _ = taken
    restored = new_volume(sc, size=2, snapshot_id=snap.snapshot_id)
    assert settled_volume(sc, restored.volume_id).state == "available"
    path = sc.locator(restored.volume_id)
    assert sc.data.size(path) == 2 * GIB
    with sc.data.local_copy(path) as copy:
        assert same_bytes(copy, expected, GIB)
    assert sc.data.read(path, 2 * GIB - MIB, MIB) == bytes(MIB)


def _snapshot_left_in_walrus(sc: ScProcess) -> SnapshotInfo:
    """A snapshot of a volume written at 3 MiB and 900 MiB, the volume then deleted: no backend
    holds the snapshot any more, so a new volume is restored from Walrus, part by checked part
    (on RBD, the pool's snapshot went with the volume)."""
    volume = new_volume(sc, 1)
    sc.data.write(sc.locator(volume.volume_id), 3 * MIB, PATTERN)
    sc.data.write(sc.locator(volume.volume_id), 900 * MIB, PATTERN)
    snap = settled_snapshot(sc, snapshot(sc, volume.volume_id).snapshot_id)
    sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id))
    return snap


def test_a_corrupted_part_makes_the_new_volume_error_naming_the_part(
        sc: ScProcess, walrus: Walrus) -> None:
    snap = _snapshot_left_in_walrus(sc)
    s3 = walrus.s3()
    body = bytearray(s3.get_object(Bucket=snap.bucket, Key="part-00000001")["Body"].read())
    body[777] ^= 0x01  # one byte
    s3.put_object(Bucket=snap.bucket, Key="part-00000001", Body=bytes(body))
    restored = new_volume(sc, 1, snapshot_id=snap.snapshot_id)
    failed = settled_volume(sc, restored.volume_id)
    assert failed.state == "error"
    assert failed.reason is not None and "part-00000001" in failed.reason.message
    assert f"bytes {900 * MIB}-" in failed.reason.message
    assert "CRC32C" in failed.reason.message
    # Nothing of the bad data is readable.
    assert sc.data.allocated(sc.locator(restored.volume_id)) == 0
    # A volume in error can be deleted.
    assert sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=restored.volume_id),
                   response=VolumeInfo).state == "deleted"


def test_a_manifest_of_the_earlier_format_restores_checked_by_its_sha256(
        sc: ScProcess, walrus: Walrus) -> None:
    snap = _snapshot_left_in_walrus(sc)
    s3 = walrus.s3()
    manifest = SnapshotManifest.model_validate_json(
        s3.get_object(Bucket=snap.bucket, Key="manifest.json")["Body"].read())
    bodies = {p.key: s3.get_object(Bucket=snap.bucket, Key=p.key)["Body"].read() for p in manifest.parts}
    # As SCs wrote them before the CRC32C: a SHA-256 per part and no crc32c field at all.
    for part in manifest.parts:
        part.sha256, part.crc32c = hashlib.sha256(bodies[part.key]).hexdigest(), None
    earlier = manifest.model_dump_json(exclude={"parts": {"__all__": {"crc32c"}}})
    assert '"crc32c"' not in earlier
    s3.put_object(Bucket=snap.bucket, Key="manifest.json", Body=earlier.encode())
    restored = new_volume(sc, 1, snapshot_id=snap.snapshot_id)
    assert settled_volume(sc, restored.volume_id).state == "available"
    assert sc.data.read(sc.locator(restored.volume_id), 900 * MIB, MIB) == PATTERN
    # The SHA-256 is checked: one byte changed in a part, and the restore refuses it.
    body = bytearray(bodies["part-00000000"])
    body[5] ^= 0x01
    s3.put_object(Bucket=snap.bucket, Key="part-00000000", Body=bytes(body))
    again = new_volume(sc, 1, snapshot_id=snap.snapshot_id)
    failed = settled_volume(sc, again.volume_id)
    assert failed.state == "error" and failed.reason is not None
    assert "part-00000000" in failed.reason.message and "SHA-256" in failed.reason.message


def test_another_zones_sc_on_the_other_backend_restores_a_snapshot_from_walrus(
        request: pytest.FixtureRequest, sc: ScProcess, walrus: Walrus, tmp_path: Path,
        taken: tuple[VolumeInfo, SnapshotInfo, Path, list[int]]) -> None:
    _, snap, expected, _ = taken
    other = "rbd" if sc.backend == "file" else "file"
    data, settings = backend_settings(request, other)
    with sc_process(tmp_path / "zone-2", walrus, data, SC_MAX_STORAGE="4", **settings) as zone2:
        restored = new_volume(zone2, snapshot_id=snap.snapshot_id)
        assert restored.state == "creating"     # not in zone-2's storage: from Walrus
        assert settled_volume(zone2, restored.volume_id).state == "available"
        with zone2.data.local_copy(zone2.locator(restored.volume_id)) as copy:
            assert same_bytes(copy, expected)


def test_deleting_a_snapshot_removes_it_from_walrus(sc: ScProcess, walrus: Walrus) -> None:
    volume = new_volume(sc, 1)
    sc.data.write(sc.locator(volume.volume_id), 0, PATTERN)
    snap = settled_snapshot(sc, snapshot(sc, volume.volume_id).snapshot_id)
    # A clone still reading through the pool's snapshot keeps its bytes when it goes.
    clone = new_volume(sc, snapshot_id=snap.snapshot_id)
    assert settled_volume(sc, clone.volume_id).state == "available"
    deleted = sc.call("DELETE", SC_SNAPSHOT_ROUTE.format(snapshot_id=snap.snapshot_id),
                      response=SnapshotInfo)
    assert deleted.state == "deleted"
    assert rbd_snapshots(sc, volume.volume_id) == []
    assert sc.data.read(sc.locator(clone.volume_id), 0, len(PATTERN)) == PATTERN
    with pytest.raises(ClientError):
        walrus.s3().head_bucket(Bucket=snap.bucket)
    route = SC_SNAPSHOT_ROUTE.format(snapshot_id=snap.snapshot_id)
    assert sc.error("GET", route) == (404, "InvalidSnapshot.NotFound")
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"),
                                                           snapshot_id=snap.snapshot_id)) == \
        (404, "InvalidSnapshot.NotFound")


def test_bad_snapshot_requests_get_ec2_codes(sc: ScProcess) -> None:
    before = sc.call("GET", SC_SNAPSHOTS_ROUTE, response=SnapshotList)
    unknown_volume = CreateSnapshot(snapshot_id=new_id("snap"), volume_id=new_id("vol"))
    assert sc.error("POST", SC_SNAPSHOTS_ROUTE, unknown_volume) == (404, "InvalidVolume.NotFound")
    assert sc.error("GET", SC_SNAPSHOT_ROUTE.format(snapshot_id=new_id("snap"))) == \
        (404, "InvalidSnapshot.NotFound")
    assert sc.error("GET", SC_SNAPSHOT_ROUTE.format(snapshot_id="snap-XYZ")) == \
        (400, "InvalidSnapshotID.Malformed")
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"),
                                                           snapshot_id=new_id("snap"))) == \
        (404, "InvalidSnapshot.NotFound")
    after = sc.call("GET", SC_SNAPSHOTS_ROUTE, response=SnapshotList)
    assert [s.snapshot_id for s in after.snapshots] == [s.snapshot_id for s in before.snapshots]


def test_a_volume_smaller_than_its_snapshot_is_refused(sc: ScProcess) -> None:
    blank = new_volume(sc, 2)
    empty = settled_snapshot(sc, snapshot(sc, blank.volume_id).snapshot_id)
    assert (empty.state, empty.parts, empty.data_bytes) == ("completed", 0, 0)
    volume_id = new_id("vol")
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume_id, size_gib=1,
                                                           snapshot_id=empty.snapshot_id)) == \
        (400, "InvalidParameterValue")
    assert not sc.data.exists(sc.locator(volume_id))
    # Without a size, the snapshot's: 2 GiB of zeros, taking no room.
    restored = new_volume(sc, size=None, snapshot_id=empty.snapshot_id)  # type: ignore[arg-type]
    done = settled_volume(sc, restored.volume_id)
    assert (done.state, done.size_gib, done.allocated_bytes) == ("available", 2, 0)


def test_without_walrus_a_snapshot_fails_with_its_reason_and_leaves_nothing(
        walrus: Walrus, tmp_path: Path) -> None:
    with refused_port() as port, sc_process(
            tmp_path / "cut-off", Walrus(f"http://127.0.0.1:{port}", walrus.admin, 0),
            SC_MAX_STORAGE="4") as lonely:
        volume = new_volume(lonely, 1)
        write(volume_file(lonely, volume.volume_id), 0, PATTERN)
        failed = settled_snapshot(lonely, snapshot(lonely, volume.volume_id).snapshot_id)
        assert failed.state == "error"
        assert failed.reason is not None and "Walrus" in failed.reason.message
        assert list((lonely.volumes / "staging").glob("*")) == []
        # Restoring needs Walrus too: a clear 503, and no volume.
        volume_id = new_id("vol")
        assert lonely.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume_id,
                                                                   snapshot_id=new_id("snap"))) == \
            (503, "ServiceUnavailable")
        assert not volume_file(lonely, volume_id).exists()


@pytest.mark.parametrize("backend", ["file", "rbd"])
def test_an_upload_cut_by_an_sc_crash_resumes_at_the_next_start(
        request: pytest.FixtureRequest, backend: str, walrus: Walrus, tmp_path: Path) -> None:
    data, settings = backend_settings(request, backend)
    with sc_process(tmp_path / "crashy", walrus, data, SC_MAX_STORAGE="4", SC_SNAPSHOT_PART_MIB="1",
                    **settings) as sc:
        volume = new_volume(sc, 1)
        path = sc.locator(volume.volume_id)
        sc.data.write(path, 64 * MIB, PATTERN)
        expected = tmp_path / "expected.raw"
        with sc.data.local_copy(path) as copy:
            subprocess.run(["cp", "--sparse=always", str(copy), str(expected)], check=True)
        os.kill(walrus.pid, signal.SIGSTOP)  # Walrus hangs: the upload cannot finish
        try:
            snap = snapshot(sc, volume.volume_id)
            sc.kill()
        finally:
            os.kill(walrus.pid, signal.SIGCONT)
        # The point in time (a frozen file, an RBD snapshot) outlives the crash; writes since
        # do not reach the snapshot.
        sc.data.write(path, 64 * MIB, b"written while the SC was down" * 100)
        sc.start()
        done = settled_snapshot(sc, snap.snapshot_id)
        assert (done.state, done.progress) == ("completed", 100)
        # Deleted, so that the new volume is restored from Walrus on either backend.
        sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id))
        restored = new_volume(sc, snapshot_id=snap.snapshot_id)
        assert settled_volume(sc, restored.volume_id).state == "available"
        with sc.data.local_copy(sc.locator(restored.volume_id)) as copy:
            assert same_bytes(copy, expected)
