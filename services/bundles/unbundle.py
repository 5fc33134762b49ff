"""Reading a bundle back: check the manifest's signature, recover the key and IV with the
cloud's private key, check every part's SHA-1, then stream

    parts -> AES-128-CBC decrypt -> gunzip -> [SHA-1 of the tar] -> untar -> destination

Parts are checked in a first pass of their own, so a corrupt part is reported as exactly that
rather than as whatever garbage it turns into after decryption."""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from services.bundles import crypto
from services.bundles.errors import (BundleError, CorruptBundle, PartDigestMismatch, SignatureInvalid)
from services.bundles.manifest import Manifest

COPY_CHUNK = 1024 * 1024
# filename -> its bytes, in chunks (a local file, a Walrus object, an HTTP stream)
PartSource = Callable[[str], Iterable[bytes]]


@dataclass(frozen=True)
class UnbundledImage:
    size: int
    sha256: str       # of the image written to the destination
    tar_sha1: str     # of the tar stream, equal to the manifest's digest


def verify_manifest(manifest: Manifest, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate whose key signed the manifest; `SignatureInvalid` if none did."""
    if not manifest.signature:
        raise SignatureInvalid("the manifest is not signed")
    for cert in certificates:
        if crypto.signature_valid(cert, manifest.signature, manifest.signed_text):
            return cert
    if not certificates:
        raise SignatureInvalid(f"no certificate is registered for account {manifest.account_id}, "
                               "so its manifest signature cannot be checked")
    raise SignatureInvalid("the manifest's signature does not match any certificate of account "
                           f"{manifest.account_id}: it was altered after signing, or signed with "
                           "another key")


def bundle_keys(manifest: Manifest, cloud_key: rsa.RSAPrivateKey) -> tuple[str, str]:
    """(key, IV) as hex, decrypted from the manifest's ec2_encrypted_* fields."""
    return (crypto.decrypt_with(cloud_key, manifest.ec2_encrypted_key, "key"),
            crypto.decrypt_with(cloud_key, manifest.ec2_encrypted_iv, "IV"))


def check_parts(manifest: Manifest, open_part: PartSource) -> int:
    """Every part's SHA-1 against the manifest; returns the bundled size."""
    total = 0
    for part in sorted(manifest.parts, key=lambda p: p.index):
        digest = hashlib.sha1()
        try:
            for chunk in open_part(part.filename):
                digest.update(chunk)
                total += len(chunk)
        except FileNotFoundError:
            raise CorruptBundle(f"part {part.index} ({part.filename}) is missing") from None
        if digest.hexdigest() != part.digest:
            raise PartDigestMismatch(f"part {part.index} ({part.filename}) is corrupt: its SHA-1 is "
                                     f"{digest.hexdigest()}, the manifest says {part.digest}")
    if total != manifest.bundled_size:
        raise CorruptBundle(f"the parts hold {total} bytes, the manifest says {manifest.bundled_size}")
    return total


def _plain_chunks(manifest: Manifest, key_hex: str, iv_hex: str,
                  open_part: PartSource) -> Iterator[bytes]:
    decryptor = crypto.Decryptor(key_hex, iv_hex)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def inflate(data: bytes) -> Iterator[bytes]:
        nonlocal inflater
        while data:
            try:
                out = inflater.decompress(data)
            except zlib.error as exc:
                raise CorruptBundle(f"the decrypted image is not valid gzip ({exc}): the bundle was "
                                    "encrypted with another key or is damaged") from None
            if out:
                yield out
            # gzip and pigz may write several members back to back
            data = inflater.unused_data if inflater.eof else b""
            if data:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    for part in sorted(manifest.parts, key=lambda p: p.index):
        for chunk in open_part(part.filename):
            yield from inflate(decryptor.update(chunk))
    yield from inflate(decryptor.finish())
    if not inflater.eof:
        raise CorruptBundle("the compressed image ends early: the bundle is truncated")


class _Stream:
    """A read()-able view of a chunk iterator that hashes what passes through (tarfile reads
    from it in stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self.sha1 = hashlib.sha1()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.sha1.update(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_CHUNK):
            pass


def unbundle(manifest: Manifest, key_hex: str, iv_hex: str, open_part: PartSource,
             destination: BinaryIO) -> UnbundledImage:
    """Write the bundle's image to `destination`, every part's digest verified first (a second
    read of each part)."""
    check_parts(manifest, open_part)
    stream = _Stream(_plain_chunks(manifest, key_hex, iv_hex, open_part))
    sha256 = hashlib.sha256()
    size = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            member = tar.next()
            if member is None or not member.isfile():
                raise CorruptBundle("the bundle's archive holds no image file")
            source = tar.extractfile(member)
            assert source is not None
            while chunk := source.read(COPY_CHUNK):
                destination.write(chunk)
                sha256.update(chunk)
                size += len(chunk)
            stream.drain()
    except tarfile.TarError as exc:
        raise CorruptBundle(f"the decrypted image is not a valid tar archive ({exc})") from None
    except BundleError:
        raise
    if stream.sha1.hexdigest() != manifest.digest:
        raise CorruptBundle(f"the unbundled archive's SHA-1 is {stream.sha1.hexdigest()}, the "
                            f"manifest says {manifest.digest}")
    if size != manifest.size:
        raise CorruptBundle(f"the image is {size} bytes, the manifest says {manifest.size}")
    if manifest.unbundled_sha256 and sha256.hexdigest() != manifest.unbundled_sha256:
        raise CorruptBundle("the image's SHA-256 does not match the manifest's unbundled_digest")
    return UnbundledImage(size=size, sha256=sha256.hexdigest(), tar_sha1=stream.sha1.hexdigest())


def local_parts(folder: str) -> PartSource:
    """Parts read from a folder on this machine."""
    from pathlib import Path

    def open_part(filename: str) -> Iterator[bytes]:
        with open(Path(folder) / filename, "rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                yield chunk
    return open_part
