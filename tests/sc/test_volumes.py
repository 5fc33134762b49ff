"""Volumes through the SC's signed internal API, as the CLC will use it: sparse files or RBD
images (the `sc` fixture runs each test on both backends), the zone's room, grow, delete, and
EC2's answers to bad input."""

from __future__ import annotations

import httpx

from services.ids import new_id
from services.messages.storage import (SC_EXPORT_ROUTE, SC_GROW_ROUTE, SC_UNEXPORT_ROUTE,
                                       SC_VOLUME_ROUTE, SC_VOLUMES_ROUTE, CreateVolume, ExportVolume,
                                       GrowVolume, UnexportVolume, VolumeInfo, VolumeList)
from tests.sc.process import ScProcess

GIB = 1024 ** 3


def create(sc: ScProcess, size: int, volume_id: str | None = None) -> VolumeInfo:
    body = CreateVolume(volume_id=volume_id or new_id("vol"), size_gib=size)
    return sc.call("POST", SC_VOLUMES_ROUTE, body, VolumeInfo)  # type: ignore[no-any-return]


def listing(sc: ScProcess) -> VolumeList:
    return sc.call("GET", SC_VOLUMES_ROUTE, response=VolumeList)  # type: ignore[no-any-return]


def test_a_new_volume_is_an_available_sparse_volume_of_its_size(sc: ScProcess) -> None:
    volume = create(sc, 5)
    assert (volume.state, volume.size_gib, volume.progress) == ("available", 5, 100)
    path = sc.locator(volume.volume_id)
    assert volume.path == path
    assert sc.data.size(path) == 5 * GIB
    # Created thin (a truncated file, an RBD image): not one block of the 5 GiB is written.
    assert sc.data.allocated(path) == 0
    described = sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id), response=VolumeInfo)
    assert described.state == "available" and described.allocated_bytes == 0
    assert volume.volume_id in [v.volume_id for v in listing(sc).volumes]


def test_asking_twice_for_the_same_volume_gives_the_same_volume(sc: ScProcess) -> None:
    volume_id = new_id("vol")
    first = create(sc, 2, volume_id)
    again = create(sc, 2, volume_id)
    assert again.volume_id == first.volume_id and again.created_at == first.created_at
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume_id, size_gib=3)) == \
        (400, "InvalidParameterValue")


def test_beyond_the_zones_room_the_create_is_refused_and_nothing_is_created(sc: ScProcess) -> None:
    before = listing(sc)
    room = before.capacity_gib - before.provisioned_gib
    assert room > 1
    volume_id = new_id("vol")
    status, code = sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume_id, size_gib=room + 1))
    assert (status, code) == (400, "VolumeLimitExceeded")
    assert not sc.data.exists(sc.locator(volume_id))
    after = listing(sc)
    assert after.provisioned_gib == before.provisioned_gib
    assert volume_id not in [v.volume_id for v in after.volumes]
    assert sc.error("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id)) == (404, "InvalidVolume.NotFound")
    # Exactly the room left still fits, and then nothing more does.
    filled = create(sc, room)
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"), size_gib=1)) == \
        (400, "VolumeLimitExceeded")
    sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=filled.volume_id))
    assert listing(sc).provisioned_gib == before.provisioned_gib


def test_delete_removes_the_volume_and_returns_the_room(sc: ScProcess) -> None:
    before = listing(sc).provisioned_gib
    volume = create(sc, 3)
    path = sc.locator(volume.volume_id)
    sc.data.write(path, 0, b"data")
    assert listing(sc).provisioned_gib == before + 3
    assert sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id),
                   response=VolumeInfo).allocated_bytes > 0
    deleted = sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id), response=VolumeInfo)
    assert deleted.state == "deleted"
    assert not sc.data.exists(path)
    assert listing(sc).provisioned_gib == before
    # Deleting again is answered with the deleted volume; the id is not reused.
    again = sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id), response=VolumeInfo)
    assert again.state == "deleted"
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume.volume_id, size_gib=3)) == \
        (400, "InvalidParameterValue")


def test_grow_keeps_the_data_and_refuses_to_shrink_or_overflow(sc: ScProcess) -> None:
    volume = create(sc, 1)
    path = sc.locator(volume.volume_id)
    sc.data.write(path, GIB - 4, b"tail")
    grown = sc.call("POST", SC_GROW_ROUTE.format(volume_id=volume.volume_id), GrowVolume(size_gib=4),
                    VolumeInfo)
    assert (grown.size_gib, grown.state) == (4, "available")
    assert sc.data.size(path) == 4 * GIB
    assert sc.data.read(path, GIB - 4, 4) == b"tail"
    route = SC_GROW_ROUTE.format(volume_id=volume.volume_id)
    assert sc.error("POST", route, GrowVolume(size_gib=4)) == (400, "InvalidParameterValue")
    assert sc.error("POST", route, GrowVolume(size_gib=2)) == (400, "InvalidParameterValue")
    room = listing(sc)
    too_big = 4 + room.capacity_gib - room.provisioned_gib + 1
    assert sc.error("POST", route, GrowVolume(size_gib=too_big)) == (400, "VolumeLimitExceeded")
    assert sc.data.size(path) == 4 * GIB
    sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume.volume_id))


def test_bad_input_gets_ec2_codes_and_changes_nothing(sc: ScProcess) -> None:
    before = listing(sc)
    unknown = new_id("vol")
    for method in ("GET", "DELETE"):
        assert sc.error(method, SC_VOLUME_ROUTE.format(volume_id=unknown)) == (404, "InvalidVolume.NotFound")
    assert sc.error("POST", SC_GROW_ROUTE.format(volume_id=unknown), GrowVolume(size_gib=2)) == \
        (404, "InvalidVolume.NotFound")
    assert sc.error("POST", SC_EXPORT_ROUTE.format(volume_id=unknown), ExportVolume(node="n1")) == \
        (404, "InvalidVolume.NotFound")
    assert sc.error("GET", SC_VOLUME_ROUTE.format(volume_id="vol-nothex!")) == \
        (400, "InvalidVolumeID.Malformed")
    for size in (0, -1, 16385):
        assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"), size_gib=size)) \
            == (400, "InvalidParameterValue")
    assert sc.error("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=new_id("vol"))) == \
        (400, "InvalidParameterValue")
    after = listing(sc)
    assert (after.provisioned_gib, len(after.volumes)) == (before.provisioned_gib, len(before.volumes))
    # And an unsigned caller gets nothing at all.
    assert httpx.get(f"{sc.url}{SC_VOLUMES_ROUTE}").status_code == 403


def test_an_exported_volume_is_in_use_and_cannot_be_deleted(sc: ScProcess) -> None:
    volume = create(sc, 1)
    route = SC_VOLUME_ROUTE.format(volume_id=volume.volume_id)
    sc.call("POST", SC_EXPORT_ROUTE.format(volume_id=volume.volume_id), ExportVolume(node="node-1"))
    assert sc.call("GET", route, response=VolumeInfo).state == "in-use"
    assert sc.error("DELETE", route) == (409, "VolumeInUse")
    assert sc.data.exists(sc.locator(volume.volume_id))
    sc.call("POST", SC_UNEXPORT_ROUTE.format(volume_id=volume.volume_id), UnexportVolume(node="node-1"))
    assert sc.call("DELETE", route, response=VolumeInfo).state == "deleted"
