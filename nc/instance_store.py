"""Per-instance disks under INSTANCE_PATH/<account>/<instance-id>/, as Eucalyptus lays them
out: a root disk that is a copy-on-write overlay of the cached image (a qcow2 file whose
backing file is the image when `qemu-img` exists, a sparse copy otherwise), a sparse
ephemeral disk taking the rest of the VM type's disk, and a 512 MB sparse swap file. Where guests
really boot (`format_disks`), the ephemeral disk is made ext3 and the swap disk swap, as
Eucalyptus's NC did (mkfs.ext3, mkswap), so a guest mounts them as they come."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from services.messages.node import SWAP_MB

GIB = 1024 ** 3
MIB = 1024 ** 2


class DiskError(Exception):
    """An instance's disks could not be made; the message goes into its StateReason."""


@dataclass(frozen=True)
class InstanceDisks:
    directory: Path
    root: Path
    root_format: str            # qcow2 (overlay) | raw (sparse copy)
    ephemeral: Path
    swap: Path
    kernel: Path | None
    ramdisk: Path | None
    console_log: Path

    def describe(self) -> list[str]:
        """One line per file, with sizes, for the simulated console."""
        lines = []
        for label, path in (("root sda1", self.root), ("ephemeral0 sda2", self.ephemeral),
                            ("swap sda3", self.swap), ("kernel", self.kernel), ("ramdisk", self.ramdisk)):
            if path is None or not path.exists():
                continue
            on_disk = path.stat().st_size
            virtual = qcow2_virtual_size(path) if path == self.root and self.root_format == "qcow2" else None
            if virtual is None:
                lines.append(f"{label}: {path} ({human_size(on_disk)})")
            else:  # the overlay file holds only what the guest wrote: its size says nothing
                lines.append(f"{label}: {path} ({human_size(virtual)}, qcow2 overlay of the image, "
                             f"{human_size(on_disk)} on disk)")
        return lines


def human_size(size: int) -> str:
    """MiB from 1 MiB up, KiB below it (a small disk is never shown as 0 MiB)."""
    if size >= MIB:
        return f"{size // MIB} MiB"
    return f"{-(-size // 1024)} KiB"


def qcow2_virtual_size(path: Path) -> int | None:
    """The disk size a qcow2 file presents (its header's `size` field), None when unreadable."""
    try:
        with path.open("rb") as stream:
            header = stream.read(32)
    except OSError:
        return None
    if len(header) < 32 or header[:4] != b"QFI\xfb":
        return None
    return int.from_bytes(header[24:32], "big")


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as stream:
        stream.truncate(size)


def _data_runs(stream: BinaryIO, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of data in a sparse file, holes skipped (SEEK_DATA/SEEK_HOLE);
    the whole file as one run where the file system cannot tell."""
    fd = stream.fileno()
    position = 0
    try:
        while position < size:
            start = os.lseek(fd, position, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end
            position = end
    except OSError as exc:
        if exc.errno == errno.ENXIO:     # no data after `position`: the rest is a hole
            return
        if position == 0:
            yield 0, size
            return
        raise


def _sparse_copy(source: Path, target: Path) -> None:
    """Copy skipping holes and runs of zeros, so an almost empty image stays almost empty and
    copying a simulated (sparse) image reads only its few bytes of data."""
    block = 64 * 1024
    zero = bytes(block)
    with source.open("rb") as src, target.open("wb") as dst:
        size = src.seek(0, 2)
        for start, end in _data_runs(src, size):
            src.seek(start)
            dst.seek(start)
            remaining = end - start
            while remaining > 0 and (chunk := src.read(min(block, remaining))):
                remaining -= len(chunk)
                if chunk == zero[:len(chunk)]:
                    dst.seek(len(chunk), 1)
                else:
                    dst.write(chunk)
        dst.truncate(size)


def _format(ephemeral: Path, swap: Path) -> None:
    """ext3 on the ephemeral disk and a swap signature on the swap disk. Lazy initialisation
    leaves the inode tables to the guest's kernel, so a 10 GB disk takes its metadata and
    journal (about 70 MB) and about a second, and the rest of the file stays sparse."""
    for argv in (["mkfs.ext3", "-q", "-F", "-L", "ephemeral0",
                  "-E", "lazy_itable_init=1,lazy_journal_init=1", str(ephemeral)],
                 ["mkswap", "-L", "swap", str(swap)]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DiskError(f"{argv[0]}: {exc}") from None
        if done.returncode != 0:
            raise DiskError(f"{argv[0]}: {done.stderr.strip() or done.stdout.strip()}")


@functools.cache
def _qemu_img() -> str | None:
    """Looked up once per process, not once per (simulated) node."""
    return shutil.which("qemu-img")


from nc.faults import FAULTS  # noqa: E402 (beside its one use)


class InstanceStore:
    def __init__(self, root: Path, *, use_qemu_img: bool | None = None,
                 format_disks: bool = False, node: str = "") -> None:
        self.root = root        # made with the first instance's folder
        self.node = node        # the node id an injected disk-full fault names (nc/faults.py)
        self.qemu_img = _qemu_img() if use_qemu_img in (None, True) else None
        # Off in simulated mode: no guest reads the disks, and mkfs would be most of a launch.
        self.format_disks = format_disks

    def directory(self, account_id: str, instance_id: str) -> Path:
        return self.root / account_id / instance_id

    def console_log(self, account_id: str, instance_id: str) -> Path:
        """Where the instance's console log is: `paths` without the three file look-ups it
        makes (the console is written several times a launch)."""
        return self.directory(account_id, instance_id) / "console.log"

    def paths(self, account_id: str, instance_id: str) -> InstanceDisks:
        """Where an instance's files are (or will be), whatever exists on disk yet."""
        directory = self.directory(account_id, instance_id)
        overlay = directory / "root.qcow2"
        root, fmt = (overlay, "qcow2") if overlay.exists() or self.qemu_img else (directory / "root.img", "raw")
        kernel, ramdisk = directory / "kernel", directory / "ramdisk"
        return InstanceDisks(directory, root, fmt, directory / "ephemeral0.img", directory / "swap.img",
                             kernel if kernel.exists() else None, ramdisk if ramdisk.exists() else None,
                             directory / "console.log")

    def create(self, account_id: str, instance_id: str, image: Path | None, disk_gb: int,
               kernel: Path | None = None, ramdisk: Path | None = None) -> InstanceDisks:
        """`image` None: the instance boots from an EBS volume, so no root disk is made and
        the ephemeral disk takes the VM type's whole disk."""
        directory = self.directory(account_id, instance_id)
        directory.mkdir(parents=True, exist_ok=True)
        image_bytes = image.stat().st_size if image is not None else 0
        ephemeral_bytes = disk_gb * GIB - image_bytes
        if ephemeral_bytes <= 0:
            raise DiskError(f"image of {image_bytes // MIB} MiB does not fit the VM type's {disk_gb} GB disk")
        try:
            FAULTS.check_write(self.node)
            if image is None:
                pass
            elif self.qemu_img:
                self._overlay(image, directory / "root.qcow2")
            else:
                _sparse_copy(image, directory / "root.img")
            _sparse(directory / "ephemeral0.img", ephemeral_bytes)
            _sparse(directory / "swap.img", SWAP_MB * MIB)
            if self.format_disks:
                _format(directory / "ephemeral0.img", directory / "swap.img")
            # Kernel and ramdisk are copied so that a reboot never depends on the cache.
            if kernel is not None:
                shutil.copyfile(kernel, directory / "kernel")
            if ramdisk is not None:
                shutil.copyfile(ramdisk, directory / "ramdisk")
            (directory / "console.log").touch()
        except OSError as exc:
            raise DiskError(f"instance store: {exc}") from None
        return self.paths(account_id, instance_id)

    def _overlay(self, image: Path, overlay: Path) -> None:
        assert self.qemu_img is not None
        result = subprocess.run([self.qemu_img, "create", "-q", "-f", "qcow2", "-F", "raw",
                                 "-b", str(image), str(overlay)], capture_output=True, text=True)
        if result.returncode != 0:
            raise DiskError(f"qemu-img: {result.stderr.strip() or result.stdout.strip()}")

    def remove(self, account_id: str, instance_id: str) -> None:
        directory = self.directory(account_id, instance_id)
        # The account's folder stays: removing it could race another instance's creation.
        shutil.rmtree(directory, ignore_errors=True)
