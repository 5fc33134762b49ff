"""The integrity checks S3 offers on a body: Content-MD5 and the x-amz-checksum-* family.
Each hasher is fed the decoded body as it streams past; nothing is buffered."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Protocol

import crc32c as _crc32c

from services.errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")
# Headers that start with x-amz-checksum- but carry no checksum.
NOT_CHECKSUMS = {"x-amz-checksum-mode", "x-amz-checksum-algorithm", "x-amz-checksum-type"}


class Hasher(Protocol):
    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    def __init__(self, fn: object) -> None:
        self._fn = fn
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)  # type: ignore[operator]

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def new_hasher(algorithm: str) -> Hasher:
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return _Crc(zlib.crc32)
    if algorithm == "CRC32C":
        return _Crc(_crc32c.crc32c)
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm!r} is not supported; use one "
                  f"of {', '.join(ALGORITHMS)}.")


def header_name(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def as_headers(sums: dict[str, str]) -> dict[str, str]:
    """Stored checksums (algorithm -> base64) as x-amz-checksum-* response headers."""
    return {header_name(algorithm): value for algorithm, value in sums.items()}


def as_fields(sums: dict[str, str]) -> dict[str, str]:
    """Stored checksums as the Checksum<ALGORITHM> elements of a response document."""
    return {f"Checksum{algorithm}": value for algorithm, value in sums.items()}


def algorithm_of_header(name: str) -> str | None:
    name = name.lower()
    if not name.startswith("x-amz-checksum-") or name in NOT_CHECKSUMS:
        return None
    return name[len("x-amz-checksum-"):].upper()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def parse_content_md5(value: str) -> bytes:
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def composite(part_checksums: list[str], algorithm: str) -> str:
    """AWS's checksum of a multipart object: the checksum of the parts' raw checksums, '-N'."""
    hasher = new_hasher(algorithm)
    for value in part_checksums:
        hasher.update(base64.b64decode(value))
    return f"{b64(hasher.digest())}-{len(part_checksums)}"
