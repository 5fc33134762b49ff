"""Instance-store disks: a qcow2 overlay backed by the cached image (qemu-img), or a sparse
copy where qemu-img is missing; sparse ephemeral and swap; an image too big for the VM type."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nc.instance_store import DiskError, InstanceStore

MIB = 1024 * 1024


def _image(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        stream.write(b"bootloader")
        stream.seek(size - 4)
        stream.write(b"tail")
    return path


def test_root_disk_is_an_overlay_of_the_cached_image(tmp_path: Path) -> None:
    image = _image(tmp_path / "cache" / "emi.img", 64 * MIB)
    disks = InstanceStore(tmp_path / "instances").create("123456789012", "i-00000001", image, disk_gb=1)
    assert disks.directory == tmp_path / "instances" / "123456789012" / "i-00000001"
    assert disks.root.name == "root.qcow2" and disks.root_format == "qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disks.root)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == str(image) and info["virtual-size"] == 64 * MIB
    assert disks.ephemeral.stat().st_size == 1024 * MIB - 64 * MIB
    assert disks.swap.stat().st_size == 512 * MIB and disks.swap.stat().st_blocks == 0


def test_without_qemu_img_the_root_disk_is_a_sparse_copy(tmp_path: Path) -> None:
    image = _image(tmp_path / "cache" / "emi.img", 64 * MIB)
    store = InstanceStore(tmp_path / "instances", use_qemu_img=False)
    disks = store.create("123456789012", "i-00000002", image, disk_gb=1)
    assert disks.root.name == "root.img" and disks.root_format == "raw"
    assert disks.root.read_bytes() == image.read_bytes()
    assert disks.root.stat().st_blocks * 512 < 1 * MIB          # the zeros were skipped
    store.remove("123456789012", "i-00000002")
    assert not disks.directory.exists()


def test_an_image_larger_than_the_vm_types_disk_is_refused(tmp_path: Path) -> None:
    image = _image(tmp_path / "cache" / "big.img", 2048 * MIB)
    with pytest.raises(DiskError, match="does not fit the VM type's 1 GB disk"):
        InstanceStore(tmp_path / "instances").create("123456789012", "i-00000003", image, disk_gb=1)


def _blkid(path: Path) -> str:
    return subprocess.run(["blkid", "-o", "value", "-s", "TYPE", str(path)],
                          capture_output=True, text=True).stdout.strip()


def test_where_guests_really_boot_ephemeral_is_ext3_and_swap_is_swap_and_both_stay_sparse(tmp_path: Path) -> None:
    image = _image(tmp_path / "cache" / "emi.img", 64 * MIB)
    disks = InstanceStore(tmp_path / "instances", format_disks=True).create(
        "123456789012", "i-00000002", image, disk_gb=10)
    assert _blkid(disks.ephemeral) == "ext3" and _blkid(disks.swap) == "swap"
    assert disks.ephemeral.stat().st_size == 10 * 1024 * MIB - 64 * MIB
    # Lazy init: metadata and journal only (about 70 MB of 10 GB), not the inode tables.
    assert disks.ephemeral.stat().st_blocks * 512 < 128 * MIB
    # Simulated nodes (the default) leave them blank: no guest reads them.
    plain = InstanceStore(tmp_path / "plain").create("123456789012", "i-00000003", image, disk_gb=1)
    assert _blkid(plain.ephemeral) == "" and plain.ephemeral.stat().st_blocks == 0
