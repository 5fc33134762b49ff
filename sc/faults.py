"""The errors the SC answers with: an HTTP status and a StorageError body whose code is the
EC2 error code the CLC passes on to the user."""

from __future__ import annotations

from services.messages.storage import StorageError


class StorageFault(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.error = StorageError(code=code, message=message)


def bad_value(message: str) -> StorageFault:
    return StorageFault(400, "InvalidParameterValue", message)


def incorrect_state(message: str) -> StorageFault:
    return StorageFault(409, "IncorrectState", message)


def volume_not_found(volume_id: str) -> StorageFault:
    return StorageFault(404, "InvalidVolume.NotFound", f"The volume '{volume_id}' does not exist.")


def snapshot_not_found(snapshot_id: str) -> StorageFault:
    return StorageFault(404, "InvalidSnapshot.NotFound",
                        f"The snapshot '{snapshot_id}' does not exist.")
