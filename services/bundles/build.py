"""Making a bundle from an image file, in one streaming pass:

    image file -> tar (one member) -> [SHA-1] -> gzip -> AES-128-CBC -> 10 MiB parts [SHA-1 each]

then the manifest, signed with the user's key. Memory use is a few buffers, whatever the size
of the image."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from services.bundles import crypto
from services.bundles.manifest import DEFAULT_MAPPINGS, KINDS, Manifest, ManifestPart, render_manifest, signed_bytes

PART_SIZE = 10 * 1024 * 1024
READ_CHUNK = 1024 * 1024
Progress = Callable[[int], None]  # called with the number of image bytes just read


@dataclass(frozen=True)
class BuiltBundle:
    manifest_path: Path
    part_paths: list[Path]
    manifest: Manifest


class _PartWriter:
    """Cuts the encrypted stream into `<prefix>.part.NN` files, hashing each."""

    def __init__(self, folder: Path, prefix: str, part_size: int) -> None:
        self._folder, self._prefix, self._part_size = folder, prefix, part_size
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha1()
        self._written = 0
        self.parts: list[tuple[Path, str]] = []
        self.total = 0

    def _open(self) -> BinaryIO:
        path = self._folder / f"{self._prefix}.part.{len(self.parts):02d}"
        self.parts.append((path, ""))
        self._file = open(path, "wb")
        self._hash, self._written = hashlib.sha1(), 0
        return self._file

    def _close_current(self) -> None:
        if self._file is not None:
            self._file.close()
            path, _ = self.parts[-1]
            self.parts[-1] = (path, self._hash.hexdigest())
            self._file = None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            handle = self._file or self._open()
            room = self._part_size - self._written
            piece = view[:room]
            handle.write(piece)
            self._hash.update(piece)
            self._written += len(piece)
            self.total += len(piece)
            view = view[len(piece):]
            if self._written >= self._part_size:
                self._close_current()

    def close(self) -> None:
        if not self.parts:  # an empty stream still makes one (empty) part
            self._open()
        self._close_current()


class _EncryptingSink:
    """The file object gzip writes into."""

    def __init__(self, encryptor: crypto.Encryptor, out: _PartWriter) -> None:
        self._encryptor, self._out = encryptor, out

    def write(self, data: bytes) -> int:
        self._out.write(self._encryptor.update(bytes(data)))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._out.write(self._encryptor.finish())
        self._out.close()


class _DigestingSink:
    """The file object tar writes into: hashes the tar stream, as euca2ools's sha1 stage did."""

    def __init__(self, out: gzip.GzipFile) -> None:
        self._out = out
        self.sha1 = hashlib.sha1()

    def write(self, data: bytes) -> int:
        self.sha1.update(data)
        self._out.write(data)
        return len(data)


class _HashingReader:
    def __init__(self, handle: BinaryIO, progress: Progress | None) -> None:
        self._handle, self._progress = handle, progress
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size if size and size > 0 else READ_CHUNK)
        self.sha256.update(data)
        if self._progress and data:
            self._progress(len(data))
        return data


def build_bundle(image: Path, destination: Path, *, account_id: str, cloud_cert: x509.Certificate,
                 user_cert: x509.Certificate, user_key: rsa.RSAPrivateKey, kind: str = "machine",
                 name: str | None = None, prefix: str | None = None, architecture: str = "x86_64",
                 kernel_id: str | None = None, ramdisk_id: str | None = None,
                 part_size: int = PART_SIZE, progress: Progress | None = None) -> BuiltBundle:
    """Bundle `image` into `destination` as `<prefix>.part.NN` and `<prefix>.manifest.xml`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if kind != "machine" and (kernel_id or ramdisk_id):
        raise ValueError("only a machine image names a kernel or ramdisk")
    prefix = prefix or image.name
    destination.mkdir(parents=True, exist_ok=True)
    key_hex, iv_hex = crypto.new_key_and_iv()
    parts = _PartWriter(destination, prefix, part_size)
    sink = _EncryptingSink(crypto.Encryptor(key_hex, iv_hex), parts)
    size = image.stat().st_size
    with open(image, "rb") as handle:
        reader = _HashingReader(handle, progress)
        zipped = gzip.GzipFile(fileobj=sink, mode="wb", mtime=0)  # type: ignore[arg-type]
        tar_sink = _DigestingSink(zipped)
        info = tarfile.TarInfo(name=image.name)
        info.size, info.mode, info.mtime = size, 0o644, int(os.path.getmtime(image))
        with tarfile.open(fileobj=tar_sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            tar.addfile(info, reader)
        zipped.close()
        sink.close()
    manifest = Manifest(
        name=name or prefix, account_id=account_id, image_type=kind, architecture=architecture,
        digest=tar_sink.sha1.hexdigest(), size=size, bundled_size=parts.total,
        ec2_encrypted_key=crypto.encrypt_for(cloud_cert, key_hex),
        ec2_encrypted_iv=crypto.encrypt_for(cloud_cert, iv_hex),
        user_encrypted_key=crypto.encrypt_for(user_cert, key_hex),
        user_encrypted_iv=crypto.encrypt_for(user_cert, iv_hex),
        parts=[ManifestPart(i, path.name, digest) for i, (path, digest) in enumerate(parts.parts)],
        kernel_id=kernel_id, ramdisk_id=ramdisk_id,
        block_device_mappings=dict(DEFAULT_MAPPINGS) if kind == "machine" else {},
        unbundled_sha256=reader.sha256.hexdigest())
    manifest.signature = crypto.sign(user_key, signed_bytes(manifest))
    manifest.signed_text = signed_bytes(manifest)
    manifest_path = destination / f"{prefix}.manifest.xml"
    manifest_path.write_bytes(render_manifest(manifest))
    return BuiltBundle(manifest_path, [p for p, _ in parts.parts], manifest)
