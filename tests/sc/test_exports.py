"""Exports to nodes: `local` hands over the file's path; `nbd` runs a real qemu-nbd on an
address other hosts reach, read back here through NBD with qemu-img; `rbd` names the image, a
monitor and the Ceph user, read back here by QEMU's own rbd driver as a node's QEMU opens it.
Idempotent per (volume, node), gone after unexport, nothing left by a failed export, and a
crashed SC's qemu-nbd is ended and served again by the next one."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ids import new_id
from services.messages.storage import (SC_EXPORT_ROUTE, SC_EXPORTS_ROUTE, SC_UNEXPORT_ROUTE,
                                       SC_VOLUME_ROUTE, SC_VOLUMES_ROUTE, CreateVolume, ExportVolume,
                                       UnexportVolume, VolumeExportInfo, VolumeExportList, VolumeInfo)
from tests.sc.conftest import volume_file
from tests.sc.process import ScProcess, Walrus, sc_process
from tests.support.ceph import CephCluster
from tests.support.volume_data import rbd_settings, volume_data
from tests.support.waiting import wait_for

MIB = 1024 * 1024
PATTERN = bytes(range(256)) * 4096  # 1 MiB that no offset mix-up reproduces


@pytest.fixture(scope="module")
def sc(walrus: Walrus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    """The file backend's exports (local, nbd); the rbd export has its own SC below."""
    with sc_process(tmp_path_factory.mktemp("sc-exports"), walrus, SC_MAX_STORAGE="16") as running:
        yield running


@pytest.fixture(scope="module")
def rbd_sc(walrus: Walrus, ceph: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScProcess]:
    with sc_process(tmp_path_factory.mktemp("sc-rbd-exports"), walrus, volume_data("rbd", ceph),
                    SC_MAX_STORAGE="16", SC_EXPORT="nbd", **rbd_settings(ceph)) as running:
        yield running


def new_volume(sc: ScProcess, size: int = 1) -> str:
    volume_id = new_id("vol")
    sc.call("POST", SC_VOLUMES_ROUTE, CreateVolume(volume_id=volume_id, size_gib=size), VolumeInfo)
    return volume_id


def export(sc: ScProcess, volume_id: str, node: str) -> VolumeExportInfo:
    return sc.call("POST", SC_EXPORT_ROUTE.format(volume_id=volume_id), ExportVolume(node=node),  # type: ignore[no-any-return]
                   VolumeExportInfo)


def unexport(sc: ScProcess, volume_id: str, node: str) -> VolumeInfo:
    return sc.call("POST", SC_UNEXPORT_ROUTE.format(volume_id=volume_id), UnexportVolume(node=node),  # type: ignore[no-any-return]
                   VolumeInfo)


def exports_of(sc: ScProcess, volume_id: str) -> list[VolumeExportInfo]:
    return sc.call("GET", SC_EXPORTS_ROUTE.format(volume_id=volume_id), response=VolumeExportList).exports  # type: ignore[no-any-return]


def state(sc: ScProcess, volume_id: str) -> str:
    return sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo).state  # type: ignore[no-any-return]


def write_pattern(sc: ScProcess, volume_id: str, offset: int) -> None:
    with open(volume_file(sc, volume_id), "r+b") as f:
        f.seek(offset)
        f.write(PATTERN)


def read_through_nbd(uri: str, offset: int, length: int, tmp: Path) -> bytes:
    """The volume as a node on another host sees it: qemu-img reads it over NBD."""
    copy = tmp / f"nbd-read-{os.getpid()}-{offset}.raw"
    try:
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, str(copy)],
                       check=True, capture_output=True, timeout=120)
        with open(copy, "rb") as f:
            f.seek(offset)
            return f.read(length)
    finally:
        copy.unlink(missing_ok=True)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.split(") ", 1)[1].startswith("Z")


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_rbd_export_names_the_image_a_monitor_and_the_user_and_qemu_reads_it(
        rbd_sc: ScProcess, ceph: CephCluster, tmp_path: Path) -> None:
    sc = rbd_sc
    volume_id = new_volume(sc)
    sc.data.write(sc.locator(volume_id), 3 * MIB, PATTERN)
    # SC_EXPORT=nbd is the file backend's: an RBD image is never served by qemu-nbd.
    first = export(sc, volume_id, "node-a")
    assert (first.driver, first.export_name, first.user) == ("rbd", f"{ceph.pool}/{volume_id}", "admin")
    assert (first.host, first.port) == (ceph.address, 6789)
    assert first.uri == f"rbd://{ceph.address}:6789/{ceph.pool}/{volume_id}"
    assert state(sc, volume_id) == "in-use" and export(sc, volume_id, "node-a") == first
    assert sc.error("POST", SC_EXPORT_ROUTE.format(volume_id=volume_id), ExportVolume(node="node-b")) \
        == (409, "VolumeInUse")
    # What libvirt hands QEMU for the network disk: the image, the monitor, the user and key.
    key = ceph.key("admin")
    source = (f"rbd:{first.export_name}:mon_host={first.host}\\:{first.port}:id={first.user}:"
              f"key={key}:auth_supported=cephx")
    copy = tmp_path / "read-through-librbd.raw"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", source, str(copy)],
                   check=True, capture_output=True, timeout=120)
    with open(copy, "rb") as f:
        f.seek(3 * MIB)
        assert f.read(len(PATTERN)) == PATTERN
    assert os.path.getsize(copy) == 1024 * MIB
    assert unexport(sc, volume_id, "node-a").state == "available" and exports_of(sc, volume_id) == []
    assert sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo).state == "deleted"
    assert not sc.data.exists(sc.locator(volume_id))


def test_local_export_hands_the_node_the_files_path_once(sc: ScProcess) -> None:
    volume_id = new_volume(sc)
    first = export(sc, volume_id, "node-a")
    assert (first.driver, first.path) == ("local", str(volume_file(sc, volume_id)))
    assert first.uri == volume_file(sc, volume_id).as_uri()
    assert state(sc, volume_id) == "in-use"
    again = export(sc, volume_id, "node-a")
    assert again == first
    assert len(exports_of(sc, volume_id)) == 1
    # One volume, one node: another node is refused while it is exported.
    assert sc.error("POST", SC_EXPORT_ROUTE.format(volume_id=volume_id), ExportVolume(node="node-b")) \
        == (409, "VolumeInUse")
    assert unexport(sc, volume_id, "node-a").state == "available"
    assert exports_of(sc, volume_id) == []
    # Unexporting what is not exported changes nothing.
    assert unexport(sc, volume_id, "node-a").state == "available"
    assert export(sc, volume_id, "node-b").node == "node-b"
    unexport(sc, volume_id, "node-b")
    sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id))


def test_nbd_export_serves_the_volumes_bytes_to_another_address_until_unexported(
        nbd_sc: ScProcess, tmp_path: Path) -> None:
    volume_id = new_volume(nbd_sc)
    write_pattern(nbd_sc, volume_id, 300 * MIB)
    first = export(nbd_sc, volume_id, "node-far")
    assert first.driver == "nbd" and first.port is not None and first.host is not None
    assert first.uri == f"nbd://{first.host}:{first.port}/{volume_id}"
    assert read_through_nbd(first.uri, 300 * MIB, len(PATTERN), tmp_path) == PATTERN
    # Asking again gives the same export, served by the same process.
    again = export(nbd_sc, volume_id, "node-far")
    assert again == first
    [row] = exports_of(nbd_sc, volume_id)
    pids = [p for p in _qemu_nbd_pids() if volume_id in _cmdline(p)]
    assert len(pids) == 1
    assert unexport(nbd_sc, volume_id, "node-far").state == "available"
    wait_for(lambda: not running(pids[0]), 10, "qemu-nbd to end")
    assert not listening(first.host, first.port)
    assert exports_of(nbd_sc, volume_id) == []
    nbd_sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id))


def test_an_nbd_export_that_fails_leaves_nothing_behind(nbd_sc: ScProcess) -> None:
    volume_id = new_volume(nbd_sc)
    # Every port the SC may use is taken by someone else.
    blockers = []
    try:
        for port in range(10850, 10870):
            sock = socket.socket()
            # As the SC probes and qemu-nbd binds: a port an earlier test's export left in
            # TIME_WAIT is taken here too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((_nbd_host(nbd_sc), port))
                sock.listen()
                blockers.append(sock)
            except OSError:
                sock.close()
        status, code = nbd_sc.error("POST", SC_EXPORT_ROUTE.format(volume_id=volume_id),
                                    ExportVolume(node="node-x"))
    finally:
        for sock in blockers:
            sock.close()
    assert (status, code) == (503, "ExportFailed")
    assert exports_of(nbd_sc, volume_id) == []
    assert state(nbd_sc, volume_id) == "available"
    assert not [p for p in _qemu_nbd_pids() if volume_id in _cmdline(p)]
    nbd_sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id))


def test_a_restarted_sc_ends_the_old_qemu_nbd_and_serves_the_export_again(
        nbd_sc: ScProcess, tmp_path: Path) -> None:
    volume_id = new_volume(nbd_sc)
    write_pattern(nbd_sc, volume_id, 5 * MIB)
    before = export(nbd_sc, volume_id, "node-r")
    [old_pid] = [p for p in _qemu_nbd_pids() if volume_id in _cmdline(p)]
    nbd_sc.kill()  # a crash: the SC cleans up nothing, its qemu-nbd lives on
    assert running(old_pid)
    nbd_sc.start()
    wait_for(lambda: not running(old_pid), 10, "the orphaned qemu-nbd to be ended")
    [after] = exports_of(nbd_sc, volume_id)
    assert (after.host, after.port, after.uri) == (before.host, before.port, before.uri)
    assert read_through_nbd(after.uri, 5 * MIB, len(PATTERN), tmp_path) == PATTERN
    [new_pid] = [p for p in _qemu_nbd_pids() if volume_id in _cmdline(p)]
    # A clean stop ends it too; the export stays recorded for the next start.
    nbd_sc.stop()
    wait_for(lambda: not running(new_pid), 10, "qemu-nbd to end with the SC")
    nbd_sc.start()
    [again] = exports_of(nbd_sc, volume_id)
    assert read_through_nbd(again.uri, 5 * MIB, len(PATTERN), tmp_path) == PATTERN
    unexport(nbd_sc, volume_id, "node-r")
    assert not [p for p in _qemu_nbd_pids() if volume_id in _cmdline(p)]
    nbd_sc.call("DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id))


def _nbd_host(sc: ScProcess) -> str:
    return sc.settings["SC_NBD_ADDRESS"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _qemu_nbd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _cmdline(int(entry.name)).startswith("qemu-nbd ") \
                and running(int(entry.name)):
            pids.append(int(entry.name))
    return pids
