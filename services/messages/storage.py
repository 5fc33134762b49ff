"""The storage controller's internal API: what the CLC (volumes and snapshots as the user sees
them) and, through the CC, the node controllers (exports) send the SC of a zone.

Routes (all under the SC's base URL, all signed with the cloud secret):
  GET    /internal/health                                   -> {"status": "ok"}
  POST   /internal/volumes              CreateVolume        -> VolumeInfo
         (id chosen by the CLC; asking again with the same id and size is answered with the
          volume as it is. 400 InvalidParameterValue for a size out of range or smaller than
          the snapshot; 400 VolumeLimitExceeded beyond SC_MAX_STORAGE, nothing created;
          404 InvalidSnapshot.NotFound; 409 IncorrectState for a snapshot still pending)
  GET    /internal/volumes                                  -> VolumeList
  GET    /internal/volumes/{volume_id}                      -> VolumeInfo
  DELETE /internal/volumes/{volume_id}                      -> VolumeInfo (state "deleted")
         (409 VolumeInUse while exported; 409 IncorrectState while creating)
  POST   /internal/volumes/{volume_id}/grow   GrowVolume    -> VolumeInfo
         (400 InvalidParameterValue when not larger; 400 VolumeLimitExceeded)
  POST   /internal/volumes/{volume_id}/export   ExportVolume   -> VolumeExportInfo
         (idempotent per (volume, node): the same export again; 409 VolumeInUse when exported
          to another node; 409 IncorrectState when not available; 503 ExportFailed with
          nothing left behind)
  POST   /internal/volumes/{volume_id}/unexport UnexportVolume -> VolumeInfo
         (unexporting what is not exported is a no-op)
  GET    /internal/volumes/{volume_id}/exports              -> VolumeExportList
  POST   /internal/snapshots            CreateSnapshot      -> SnapshotInfo
         (the point-in-time step is done when this answers; the upload to Walrus goes on in
          the background, `progress` climbing to 100. 409 IncorrectState unless the volume is
          available or in-use)
  GET    /internal/snapshots                                -> SnapshotList
  GET    /internal/snapshots/{snapshot_id}                  -> SnapshotInfo
  DELETE /internal/snapshots/{snapshot_id}                  -> SnapshotInfo (state "deleted")
         (409 IncorrectState while pending)

Unknown ids answer 404 InvalidVolume.NotFound / InvalidSnapshot.NotFound; malformed ones 400
InvalidVolumeID.Malformed / InvalidSnapshotID.Malformed. Errors come back as HTTP statuses
whose `detail` is a StorageError (as a JSON object), so `InternalCallError.detail["code"]` is
the EC2 error code the CLC can pass on.

A snapshot in Walrus is the bucket `snapset-<snapshot id>`: objects `part-<8 digits>` (the
volume's data extents packed end to end, at most SC_SNAPSHOT_PART_MIB each, where they go
listed in the manifest; holes and all-zero runs are not stored) and
`manifest.json` (a SnapshotManifest, written last, so a manifest means a complete snapshot).
Any zone's SC can restore from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from services.messages.node import StateReason

SC_VOLUMES_ROUTE = "/internal/volumes"
SC_VOLUME_ROUTE = "/internal/volumes/{volume_id}"
SC_GROW_ROUTE = "/internal/volumes/{volume_id}/grow"
SC_EXPORT_ROUTE = "/internal/volumes/{volume_id}/export"
SC_UNEXPORT_ROUTE = "/internal/volumes/{volume_id}/unexport"
SC_EXPORTS_ROUTE = "/internal/volumes/{volume_id}/exports"
SC_SNAPSHOTS_ROUTE = "/internal/snapshots"
SC_SNAPSHOT_ROUTE = "/internal/snapshots/{snapshot_id}"

VolumeState = Literal["creating", "available", "in-use", "deleting", "deleted", "error"]
SnapshotState = Literal["pending", "completed", "error", "deleting", "deleted"]
ExportDriver = Literal["local", "nbd", "rbd"]

# EC2's bounds for a volume's size (gp2/gp3 go to 16 TiB).
MIN_VOLUME_GIB = 1
MAX_VOLUME_GIB = 16384


class StorageError(BaseModel):
    code: str               # EC2 error code: VolumeLimitExceeded, InvalidVolume.NotFound, …
    message: str



class CreateVolume(BaseModel):
    volume_id: str
    size_gib: int | None = None     # None: the snapshot's size (required without a snapshot)
    snapshot_id: str | None = None


class GrowVolume(BaseModel):
    size_gib: int


class VolumeInfo(BaseModel):
    volume_id: str
    size_gib: int
    state: VolumeState
    progress: int                   # 0..100; below 100 only while restoring from a snapshot
    snapshot_id: str | None = None
    created_at: datetime
    reason: StateReason | None = None
    path: str                       # the volume's locator: the sparse file on the SC's host, or rbd:pool/image
    allocated_bytes: int = 0        # what the volume really takes (on disk, or in the pool)
    exports: int = 0


class VolumeList(BaseModel):
    volumes: list[VolumeInfo]
    capacity_gib: int               # SC_MAX_STORAGE, or what the disk had
    provisioned_gib: int            # the sizes of every volume not deleted


class ExportVolume(BaseModel):
    node: str                       # the node id the NC reports for itself


class UnexportVolume(BaseModel):
    node: str


class VolumeExportInfo(BaseModel):
    volume_id: str
    node: str
    driver: ExportDriver
    path: str | None = None         # local: the file the node opens
    host: str | None = None         # nbd: where qemu-nbd listens
    port: int | None = None
    export_name: str | None = None  # rbd: pool/image
    user: str | None = None         # rbd: the Ceph user (client.<user>) the node connects as
    uri: str                        # file:///…, nbd://host:port/name or rbd://mon:port/pool/image
    created_at: datetime


class VolumeExportList(BaseModel):
    exports: list[VolumeExportInfo]


class CreateSnapshot(BaseModel):
    snapshot_id: str
    volume_id: str


class SnapshotInfo(BaseModel):
    snapshot_id: str
    volume_id: str
    volume_size_gib: int
    state: SnapshotState
    progress: int                   # 0..100 as the parts reach Walrus
    started_at: datetime
    completed_at: datetime | None = None
    reason: StateReason | None = None
    bucket: str
    freeze_method: str              # "reflink", "extent-copy" or "rbd-snapshot": how the point in time was taken
    freeze_ms: float                # how long the point-in-time step took
    data_bytes: int = 0             # bytes outside holes: what the upload reads
    uploaded_bytes: int = 0
    parts: int = 0


class SnapshotList(BaseModel):
    snapshots: list[SnapshotInfo]


class SnapshotExtent(BaseModel):
    offset: int                     # where in the volume
    length: int


class SnapshotPart(BaseModel):
    index: int                      # its place in the upload: the key is part-<index>
    key: str
    length: int
    # What a restore checks the part's bytes against: the base64 big-endian CRC32C (as
    # x-amz-checksum-crc32c carries it); manifests written before it have the hex SHA-256.
    crc32c: str | None = None
    sha256: str | None = None
    extents: list[SnapshotExtent]   # the part's bytes, in order, go to these places


class SnapshotManifest(BaseModel):
    format: Literal["eucasim-snapshot-1"] = "eucasim-snapshot-1"
    snapshot_id: str
    volume_id: str
    size_bytes: int
    part_size: int                  # the largest a part may be
    parts: list[SnapshotPart]
    created_at: datetime
