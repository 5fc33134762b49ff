"""eucasim's tiny default guest, built from Debian's own packages on first use: the cloud
kernel (`apt-get download linux-image-cloud-amd64`) and an initramfs of busybox-static, the
virtio and SCSI modules the kernel needs, and guest_init.sh as /init. It boots under QEMU's
software emulation in about five seconds and does what a user checks first: DHCP, metadata,
user-data, ephemeral and swap disks, answers on 80 and 22, reports hot-plugged disks."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

KERNEL_PACKAGE = "linux-image-cloud-amd64"
# In load order: each after what it depends on.
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
           "failover", "net_failover", "virtio_net", "virtio_blk", "scsi_common", "scsi_mod",
           "sd_mod", "virtio_scsi")
HERE = Path(__file__).parent
CMDLINE = "console=ttyS0 quiet panic=-1"


@dataclass(frozen=True)
class GuestFiles:
    kernel: Path        # vmlinuz: the EKI
    ramdisk: Path       # initrd.gz: the ERI
    root: Path          # a small ext2 file system: the EMI's sda1 (the guest runs from its ramdisk)


def _download(package: str, into: Path) -> Path:
    subprocess.run(["apt-get", "download", package], cwd=into, check=True, capture_output=True)
    return next(into.glob(f"{package}_*.deb"))


def _kernel_deb(work: Path) -> Path:
    """The versioned kernel package the meta-package depends on."""
    meta = _download(KERNEL_PACKAGE, work)
    depends = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends"], check=True,
                             capture_output=True, text=True).stdout
    versioned = next(d.strip().split()[0] for d in depends.split(",") if d.strip().startswith("linux-image-"))
    return _download(versioned, work)


def _cpio_newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """An initramfs archive (cpio 'newc') of path -> (mode, content); directories have b''."""
    out = io.BytesIO()

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        header = "070701" + "".join(f"{v:08X}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        out.write(header.encode() + name.encode() + b"\0")
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, (mode, data)) in enumerate(sorted(files.items()), start=1):
        entry(name, mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return out.getvalue()


def _initramfs(modules_dir: Path) -> bytes:
    files: dict[str, tuple[int, bytes]] = {}
    for directory in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "mnt", "lib", "lib/modules",
                      "usr", "usr/bin", "usr/sbin", "www"):
        files[directory] = (stat.S_IFDIR | 0o755, b"")
    files["bin/busybox"] = (stat.S_IFREG | 0o755, Path("/bin/busybox").read_bytes())
    files["init"] = (stat.S_IFREG | 0o755, (HERE / "guest_init.sh").read_bytes())
    files["etc/udhcpc.sh"] = (stat.S_IFREG | 0o755, (HERE / "guest_udhcpc.sh").read_bytes())
    for module in MODULES:
        files[f"lib/modules/{module}.ko"] = (stat.S_IFREG | 0o644, (modules_dir / f"{module}.ko").read_bytes())
    # mtime 0: the same scripts give the same ramdisk bytes.
    return gzip.compress(_cpio_newc(files), compresslevel=6, mtime=0)


def _keep_modules(tree: Path, into: Path) -> None:
    """The modules the initramfs needs, kept beside the kernel so that a changed /init
    rebuilds the ramdisk without downloading the kernel again."""
    into.mkdir(parents=True, exist_ok=True)
    for module in MODULES:
        found = next(tree.rglob(f"{module}.ko"), None)
        if found is None:
            raise FileNotFoundError(f"the kernel package has no module {module}.ko")
        shutil.copyfile(found, into / f"{module}.ko")


def _root_image(path: Path) -> None:
    """A 4 MiB ext2 file system with a marker: the machine image the cloud bundles."""
    with tempfile.TemporaryDirectory() as tree:
        Path(tree, "EUCASIM-GUEST").write_text("eucasim tiny guest root\n")
        with path.open("wb") as image:
            image.truncate(4 * 1024 * 1024)
        subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", tree, "-F", str(path)], check=True,
                       capture_output=True)


def build(into: Path) -> GuestFiles:
    """Build the guest into `into`. The kernel, its modules and the root image are downloaded
    or made once and kept there; the ramdisk is packed again on every call (about a second),
    so it always carries the current guest_init.sh."""
    files = GuestFiles(into / "vmlinuz", into / "initrd.gz", into / "root.img")
    modules = into / "modules"
    into.mkdir(parents=True, exist_ok=True)
    if not Path("/bin/busybox").is_file():
        raise FileNotFoundError("/bin/busybox is missing: apt-get install busybox-static")
    if not (files.kernel.is_file() and all((modules / f"{m}.ko").is_file() for m in MODULES)):
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            os.chmod(work, 0o755)  # apt-get download runs as _apt where it can
            deb = _kernel_deb(work)
            tree = work / "tree"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True)
            _keep_modules(tree / "lib" / "modules", modules)
            vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
            shutil.copyfile(vmlinuz, files.kernel.with_suffix(".tmp"))
            files.kernel.with_suffix(".tmp").rename(files.kernel)
    ramdisk = _initramfs(modules)
    if not files.ramdisk.is_file() or files.ramdisk.read_bytes() != ramdisk:
        files.ramdisk.with_suffix(".tmp").write_bytes(ramdisk)
        files.ramdisk.with_suffix(".tmp").rename(files.ramdisk)
    if not files.root.is_file():
        _root_image(files.root.with_suffix(".tmp"))
        files.root.with_suffix(".tmp").rename(files.root)
    return files


__all__ = ["CMDLINE", "GuestFiles", "build"]
