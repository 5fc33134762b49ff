"""The CLC's side of each zone's storage controller: `StorageClient` is what the volume and
snapshot behaviour may ask a zone's SC (services/messages/storage.py), and `ScStorageClient`
asks it over the signed internal API.

Errors are translated here, once: the SC's StorageError JSON becomes a `StorageError` carrying
its EC2 code (VolumeLimitExceeded, InvalidSnapshot.NotFound, VolumeInUse, ...) and the SC's
status, and an SC that cannot be reached or fails (5xx) a `StorageUnavailable`. Both are
EC2Errors, so a handler that cannot do better lets them reach the user as they are.

eucasim runs one SC, reached at `config.service_url("sc")`; every zone of ZONES maps to it
until several SCs can be configured (as zones_client.py does for the CC)."""

from __future__ import annotations

from typing import Protocol

from clc.zone_service import ServiceError, ZoneServiceClient
from services.errors import EC2Error
from services.messages.storage import (SC_EXPORT_ROUTE, SC_EXPORTS_ROUTE, SC_GROW_ROUTE,
                                       SC_SNAPSHOT_ROUTE,
                                       SC_SNAPSHOTS_ROUTE, SC_UNEXPORT_ROUTE, SC_VOLUME_ROUTE,
                                       SC_VOLUMES_ROUTE, CreateSnapshot, CreateVolume, ExportVolume,
                                       GrowVolume, SnapshotInfo, SnapshotList, UnexportVolume,
                                       VolumeExportInfo, VolumeExportList, VolumeInfo,
                                       VolumeList)

class StorageError(ServiceError):
    """The zone's SC refused: `code` is its EC2 code, `service_status` the SC's HTTP status."""


class StorageUnavailable(StorageError):
    """The zone's SC did not answer, or failed (5xx)."""
    unavailable = True

    def __init__(self, message: str, sc_status: int = 503, code: str = "Unavailable") -> None:
        super().__init__(code, message, sc_status)


class StorageClient(Protocol):
    """What the CLC may ask the storage controller of a zone. Every method raises StorageError
    (or StorageUnavailable) and nothing else for what the SC refuses or cannot answer; the
    look-ups answer None for an id the SC does not know."""

    def create_volume(self, zone: str, request: CreateVolume) -> VolumeInfo: ...

    def volume(self, zone: str, volume_id: str) -> VolumeInfo | None: ...

    def volumes(self, zone: str) -> VolumeList: ...

    def delete_volume(self, zone: str, volume_id: str) -> VolumeInfo | None: ...

    def grow_volume(self, zone: str, volume_id: str, size_gib: int) -> VolumeInfo: ...

    def export(self, zone: str, volume_id: str, node: str) -> VolumeExportInfo: ...

    def unexport(self, zone: str, volume_id: str, node: str) -> VolumeInfo | None: ...

    def exports(self, zone: str, volume_id: str) -> VolumeExportList | None: ...

    def create_snapshot(self, zone: str, request: CreateSnapshot) -> SnapshotInfo: ...

    def snapshot(self, zone: str, snapshot_id: str) -> SnapshotInfo | None: ...

    def snapshots(self, zone: str) -> SnapshotList: ...

    def delete_snapshot(self, zone: str, snapshot_id: str) -> SnapshotInfo | None: ...

    def close(self) -> None: ...


class ScStorageClient(ZoneServiceClient):
    SERVICE = "sc"
    TITLE = "storage controller"
    # A snapshot's point-in-time step and a volume's creation answer quickly; the uploads
    # and restores go on in the SC's background.
    CALL_TIMEOUT = 60.0

    def _unknown_zone(self, zone: str) -> EC2Error:
        return EC2Error("InvalidParameterValue", f"Invalid availability zone: [{zone}]")

    def _refused(self, code: str, message: str, status: int) -> ServiceError:
        return StorageError(code, message, status)

    def _unavailable(self, message: str, status: int, code: str) -> ServiceError:
        # ExportFailed and the like keep their code: the attach worker records it as the reason.
        return StorageUnavailable(message, status, code if code != "InternalError" else "Unavailable")

    def create_volume(self, zone: str, request: CreateVolume) -> VolumeInfo:
        return self._call(zone, "POST", SC_VOLUMES_ROUTE, request, VolumeInfo)

    def volume(self, zone: str, volume_id: str) -> VolumeInfo | None:
        return self._unless_unknown(zone, "GET", SC_VOLUME_ROUTE.format(volume_id=volume_id),
                                    None, VolumeInfo)

    def volumes(self, zone: str) -> VolumeList:
        return self._call(zone, "GET", SC_VOLUMES_ROUTE, None, VolumeList)

    def delete_volume(self, zone: str, volume_id: str) -> VolumeInfo | None:
        return self._unless_unknown(zone, "DELETE", SC_VOLUME_ROUTE.format(volume_id=volume_id),
                                    None, VolumeInfo)

    def grow_volume(self, zone: str, volume_id: str, size_gib: int) -> VolumeInfo:
        return self._call(zone, "POST", SC_GROW_ROUTE.format(volume_id=volume_id),
                          GrowVolume(size_gib=size_gib), VolumeInfo)

    def export(self, zone: str, volume_id: str, node: str) -> VolumeExportInfo:
        return self._call(zone, "POST", SC_EXPORT_ROUTE.format(volume_id=volume_id),
                          ExportVolume(node=node), VolumeExportInfo)

    def unexport(self, zone: str, volume_id: str, node: str) -> VolumeInfo | None:
        return self._unless_unknown(zone, "POST", SC_UNEXPORT_ROUTE.format(volume_id=volume_id),
                                    UnexportVolume(node=node), VolumeInfo)

    def exports(self, zone: str, volume_id: str) -> VolumeExportList | None:
        return self._unless_unknown(zone, "GET", SC_EXPORTS_ROUTE.format(volume_id=volume_id),
                                    None, VolumeExportList)

    def create_snapshot(self, zone: str, request: CreateSnapshot) -> SnapshotInfo:
        return self._call(zone, "POST", SC_SNAPSHOTS_ROUTE, request, SnapshotInfo)

    def snapshot(self, zone: str, snapshot_id: str) -> SnapshotInfo | None:
        return self._unless_unknown(zone, "GET", SC_SNAPSHOT_ROUTE.format(snapshot_id=snapshot_id),
                                    None, SnapshotInfo)

    def snapshots(self, zone: str) -> SnapshotList:
        return self._call(zone, "GET", SC_SNAPSHOTS_ROUTE, None, SnapshotList)

    def delete_snapshot(self, zone: str, snapshot_id: str) -> SnapshotInfo | None:
        return self._unless_unknown(zone, "DELETE",
                                    SC_SNAPSHOT_ROUTE.format(snapshot_id=snapshot_id), None,
                                    SnapshotInfo)
