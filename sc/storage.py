"""Where a zone's volumes live: one small interface, two drivers chosen by SC_BACKEND.

- `file` (sc/file_storage.py): sparse files under SC_VOLUME_PATH; the point in time is a
  reflink or an extent copy of the file.
- `rbd` (sc/rbd_storage.py): an RBD image per volume in a Ceph pool; the point in time is an
  RBD snapshot, kept in the pool after the upload so that a volume made from it is a clone.

A volume is named by its *locator*, the string the SC records as the volume's path: a file's
path, or `rbd:<pool>/<image>`. A snapshot's point in time is named by its *handle*: the frozen
copy's path, or `rbd:<pool>/<image>@<snapshot id>`. Snapshots in Walrus are the same whatever
the backend (sc/snapstore.py reads a `DataReader` and writes a `DataWriter`), so a snapshot
taken on one backend restores on the other, in any zone.

sc/volumes.py and sc/snapshots.py call this interface, never a driver's module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

GIB = 1024 ** 3


class StorageFull(Exception):
    """The backend has no room to write (ENOSPC, a full pool); nothing was made."""


@dataclass(frozen=True)
class Frozen:
    handle: str         # where the point-in-time copy is (see the module's docstring)
    method: str         # how it was taken: reflink, extent-copy, rbd-snapshot


class DataReader(Protocol):
    """A point in time opened for its upload. `pieces` yields (offset, length) of the data, in
    order, holes left out; each piece is read with `read_into` (in order, possibly in several
    calls) before the next is asked for, so a driver may stream."""

    size: int
    data_bytes: int     # what `pieces` will cover: the upload's progress counts against it

    def pieces(self, piece: int) -> Iterator[tuple[int, int]]: ...

    def read_into(self, offset: int, view: memoryview) -> None:
        """Exactly len(view) bytes from `offset`."""
        ...


class DataWriter(Protocol):
    """A volume opened for a restore: parts arrive in any order, from several threads."""

    def write(self, offset: int, data: bytes | memoryview) -> None: ...


class VolumeStorage(Protocol):
    backend: str        # file | rbd
    # True when a point in time stays in the backend after its upload (an RBD snapshot: a
    # volume made from it is a clone); False when the upload was its only use (a frozen file).
    holds_snapshots: bool

    def locator(self, volume_id: str) -> str:
        """Where a new volume of that id goes."""
        ...

    def create(self, locator: str, size_bytes: int) -> None:
        """A new volume reading as zeros that takes no room until written; StorageFull when
        there is no room; fails if it exists."""
        ...

    def grow(self, locator: str, size_bytes: int) -> None: ...

    def delete(self, locator: str) -> None:
        """The volume and every point in time of it still in the backend; a no-op when gone."""
        ...

    def exists(self, locator: str) -> bool: ...

    def allocated(self, locators: list[str]) -> dict[str, int]:
        """What each volume really takes (bytes written, as opposed to its size)."""
        ...

    def room_gib(self) -> int:
        """SC_MAX_STORAGE's default: what the backend can still hold plus what the volumes
        already take, in whole GiB."""
        ...

    def freeze(self, locator: str, snapshot_id: str) -> Frozen:
        """The volume as it is now, in one short step."""
        ...

    def frozen_exists(self, handle: str) -> bool: ...

    def open_frozen(self, handle: str) -> AbstractContextManager[DataReader]: ...

    def uploaded(self, handle: str) -> None:
        """The upload of `handle` succeeded and the snapshot is recorded completed: drop what
        only the upload needed (nothing when `holds_snapshots`)."""
        ...

    def forget(self, handle: str) -> None:
        """The snapshot is deleted: drop whatever of it the backend still holds."""
        ...

    def sweep(self, keep: set[str]) -> None:
        """At start: drop frozen copies that belong to no pending snapshot."""
        ...

    def clone(self, handle: str, locator: str, size_bytes: int) -> bool:
        """A new volume at `locator` from the point in time `handle`, when the backend still
        holds it (copy-on-write); False when it does not (the caller restores from Walrus)."""
        ...

    def open_writer(self, locator: str) -> AbstractContextManager[DataWriter]:
        """Writes into the volume; leaving the block without an error means they are durable."""
        ...

    def discard(self, locator: str) -> None:
        """Drop every byte of the volume, keeping its size (bad data never stays readable)."""
        ...

    def describe(self) -> str:
        """One line for the trace and the log: where volumes live."""
        ...
