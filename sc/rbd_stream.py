"""The "rbd diff v1" stream that `rbd export-diff` writes and `rbd import-diff` reads: a header
line, then records — `f`/`t` + le32 length + a snapshot name, `s` + le64 size, `w` + le64
offset + le64 length + the bytes, `z` + le64 offset + le64 length (zeros), `e` at the end.
The SC reads a snapshot's allocated extents from it for the upload and writes a restore's
parts into it (sc/rbd_storage.py runs the commands)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import IO

DIFF_HEADER = b"rbd diff v1\n"


class RbdError(Exception):
    """An `rbd` command failed; the message carries what it said."""


class DiffReader:
    """The allocated extents of one RBD snapshot, streamed from `rbd export-diff`.

    RBD reports extents at its object store's grain — memstore, for one, from the start of a
    4 MiB object to its last written byte — so an extent may hold long runs of zeros. Pieces
    are cut at GRAIN boundaries, so the upload's zero check (sc/snapstore.py) drops those runs
    64 KiB at a time instead of sending them inside a piece that also holds data."""

    GRAIN = 64 * 1024

    def __init__(self, stream: IO[bytes], size: int, data_bytes: int) -> None:
        self.stream = stream
        self.size = size
        self.data_bytes = data_bytes
        self._position = -1     # where the next byte of a `w` record's data lands
        self._left = 0          # its bytes not yet read

    def _exact(self, count: int) -> bytes:
        data = self.stream.read(count)
        if len(data) != count:
            raise RbdError(f"rbd export-diff ended in the middle of a record ({len(data)} of {count} bytes)")
        return data

    def _skip(self, count: int) -> None:
        while count:
            count -= len(self._exact(min(count, 1 << 20)))

    def pieces(self, piece: int) -> Iterator[tuple[int, int]]:
        if self._exact(len(DIFF_HEADER)) != DIFF_HEADER:
            raise RbdError("rbd export-diff did not start with 'rbd diff v1'")
        while True:
            tag = self._exact(1)
            if tag in (b"f", b"t"):
                (length,) = struct.unpack("<I", self._exact(4))
                self._exact(length)
            elif tag == b"s":
                self._exact(8)
            elif tag == b"z":
                self._exact(16)     # zeros: a hole to the upload
            elif tag == b"w":
                offset, length = struct.unpack("<QQ", self._exact(16))
                self._position, self._left = offset, length
                grain = min(piece, self.GRAIN)
                start, end = offset, offset + length
                while start < end:
                    stop = min(end, (start // grain + 1) * grain)
                    yield start, stop - start
                    start = stop
                if self._left:      # the consumer skipped bytes: keep the stream in step
                    self._skip(self._left)
                    self._left = 0
            elif tag == b"e":
                return
            else:
                raise RbdError(f"rbd export-diff sent an unknown record {tag!r}")

    def read_into(self, offset: int, view: memoryview) -> None:
        if offset != self._position or len(view) > self._left:
            raise RbdError(f"out-of-order read at {offset} (the stream is at {self._position})")
        filled = 0
        while filled < len(view):
            got = self.stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not got:
                raise RbdError("rbd export-diff ended in the middle of its data")
            filled += got
        self._position += filled
        self._left -= filled


class DiffWriter:
    """`w` records into `rbd import-diff`, one at a time whatever thread sends them."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        with self._lock:
            self.stream.write(b"w" + struct.pack("<QQ", offset, len(data)))
            self.stream.write(data)
