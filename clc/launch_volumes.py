"""The EBS volumes an instance boots with: RunInstances' BlockDeviceMappings merged over its
image's (an EBS-backed image's root snapshot among them), checked on the request as EC2 checks
them, then made off the request before the zone places the instance.

On the request (`plan`): every mapping is validated before anything is recorded (a bad device
name, a size smaller than its snapshot, an unknown snapshot: EC2's error, nothing changed).

Off the request (`prepare`, on a launch's own thread, since a restore from a snapshot may take
a while and must not stall the zone's other launches): the SC creates each volume (restoring
the snapshot), the CLC waits for it to be available, the SC exports it, and the volume's
attachment is recorded `attaching` to the instance. The CC then places the instance with the
volumes' sources in its RunInstance, and the NC defines the domain with them from the start.

Boot volumes are exported before the scheduler has chosen a node, so their export is keyed by
the instance rather than a node (`attach_node` = the instance id): both export drivers serve
any node that reaches the SC (a path on the shared host, or qemu-nbd on the SC's address), and
the same export serves the instance wherever a later StartInstances places it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from clc import snapshots, volumes
from clc.models.images import Image
from clc.models.volumes import Volume
from clc.storage_client import StorageClient, StorageError
from clc.volume_work import source_of
from services.clock import utcnow
from services.db import Database
from services.errors import EC2Error
from services.messages.node import BootVolume
from services.messages.storage import CreateVolume


def bad_mapping(message: str) -> EC2Error:
    return EC2Error("InvalidBlockDeviceMapping", message)


@dataclass(frozen=True)
class PlannedVolume:
    device: str
    size_gib: int
    volume_type: str
    snapshot_id: str | None
    data_id: str | None             # the SC's name for the snapshot's bytes
    delete_on_termination: bool
    root: bool


@dataclass(frozen=True)
class BootPlan:
    root_device_type: str           # instance-store | ebs
    root_device_name: str
    volumes: tuple[PlannedVolume, ...]


def image_mappings(image: Image) -> list[dict[str, Any]]:
    return list(json.loads(image.block_devices_json or "[]"))


def _volume(db: Session, account_id: str, mapping: dict[str, Any], root: bool) -> PlannedVolume:
    name, ebs = mapping["DeviceName"], mapping["Ebs"]
    snapshot_id, size = ebs.get("SnapshotId"), ebs.get("VolumeSize")
    if not snapshot_id and size is None:
        raise bad_mapping(f"Either snapshot ID or volume size must be provided for: {name}")
    if ebs.get("Encrypted"):
        raise EC2Error("InvalidParameterValue", "eucasim's volumes are not encrypted; "
                       "leave Encrypted unset or false.")
    # A mapping the image registered names its owner's snapshot; one the user gave, theirs.
    snapshot = None
    if snapshot_id:
        try:
            snapshot = snapshots.restorable(db, mapping.get("_owner", account_id), snapshot_id)
        except EC2Error as exc:
            if exc.code != "IncorrectState" or "_image" not in mapping:
                raise
            # CreateImage's snapshot still being taken: the image is pending, as EC2 says.
            raise EC2Error("InvalidAMIID.Unavailable", f"The image id '[{mapping['_image']}]' is "
                           f"not available yet: its snapshot {snapshot_id} is pending") from None
    if size is None:
        size = snapshot.volume_size_gib  # type: ignore[union-attr]
    if snapshot is not None and size < snapshot.volume_size_gib:
        raise bad_mapping(f"Volume of size {size}GB is smaller than snapshot '{snapshot.id}', "
                          f"expect size >= {snapshot.volume_size_gib}GB")
    kind = volumes.volume_type(ebs.get("VolumeType"))
    volumes.check_size(size, kind)
    keep = ebs.get("DeleteOnTermination")
    return PlannedVolume(device=name, size_gib=size, volume_type=kind,
                         snapshot_id=snapshot.id if snapshot else None,
                         data_id=snapshot.data_id if snapshot else None,
                         delete_on_termination=True if keep is None else bool(keep), root=root)


def plan(db: Session, account_id: str, image: Image,
         mappings: list[dict[str, Any]]) -> BootPlan:
    """The volumes to make for each instance of a launch, validated; nothing is recorded."""
    root_key = volumes.short_device(image.root_device_name)
    merged: dict[str, dict[str, Any]] = {
        volumes.short_device(m["DeviceName"]): {**m, "_owner": image.account_id, "_image": image.id}
        for m in image_mappings(image)}
    seen: set[str] = set()
    for mapping in mappings:
        name = mapping.get("DeviceName") or ""
        key = volumes.short_device(name)
        if not key:
            raise bad_mapping("A block device mapping needs a DeviceName.")
        if key in seen:
            raise bad_mapping(f"The device '{key}' is used in more than one block-device mapping")
        seen.add(key)
        if mapping.get("NoDevice") is not None:
            merged.pop(key, None)
            continue
        if mapping.get("Ebs") is not None:
            before = merged.get(key, {})
            ebs = {**before.get("Ebs", {}), **mapping["Ebs"]}
            merged[key] = {"DeviceName": name, "Ebs": ebs}
            if "SnapshotId" not in mapping["Ebs"] and before.get("_owner"):
                merged[key].update(_owner=before["_owner"], _image=before["_image"])
        elif mapping.get("VirtualName"):
            merged[key] = {"DeviceName": name, "VirtualName": mapping["VirtualName"]}
    planned: list[PlannedVolume] = []
    for key, mapping in merged.items():
        if "Ebs" not in mapping:
            # ephemeralN: the instance store's ephemeral0 (sda2) serves it.
            continue
        root = key == root_key
        if root and image.root_device_type != "ebs":
            raise bad_mapping(f"The device {mapping['DeviceName']} is the root device of "
                              f"instance-store image {image.id}; it cannot be an EBS volume")
        if not root and (not volumes.DEVICE.match(mapping["DeviceName"])
                         or key in volumes.INSTANCE_DEVICES):
            raise bad_mapping(f"Invalid device name {mapping['DeviceName']}")
        planned.append(_volume(db, account_id, mapping, root))
    if image.root_device_type == "ebs" and not any(v.root for v in planned):
        raise bad_mapping(f"The root device {image.root_device_name} of EBS-backed image "
                          f"{image.id} needs its volume")
    planned.sort(key=lambda v: (not v.root, volumes.short_device(v.device)))
    return BootPlan(image.root_device_type, image.root_device_name, tuple(planned))


def record(db: Session, account_id: str, zone: str, planned: PlannedVolume, volume_id: str) -> Volume:
    """The launch's volume, `creating`; it is attached once the SC has made it."""
    return volumes.record_new(db, Volume(
        id=volume_id, account_id=account_id, zone=zone, size_gib=planned.size_gib,
        volume_type=planned.volume_type, snapshot_id=planned.snapshot_id, state="creating",
        delete_on_termination=planned.delete_on_termination, created_at=utcnow(),
        updated_at=utcnow()))


# --------------------------------------------------------------------------- off the request

@dataclass(frozen=True)
class BootDisk:
    instance_id: str
    volume_id: str
    device: str
    root: bool
    delete_on_termination: bool
    create: CreateVolume | None     # None: the volume exists (a stopped instance starting again)


class BootFailed(Exception):
    """The volumes could not be made ready; the message goes into the instances' StateReason."""


POLL_SECONDS = 0.2


def prepare(db: Database, storage: StorageClient, zone: str, disks: list[BootDisk],
            timeout: float, note: Callable[[str], None] = lambda _what: None
            ) -> dict[str, list[BootVolume]]:
    """Create, wait for, export and record as attaching every disk; instance id -> what its
    RunInstance carries. BootFailed (after undoing nothing: `abandon` does that)."""
    with db.session() as session:
        # Volumes attached while it ran were exported to its node then; they follow the
        # instance now (to whichever node the scheduler picks), so that export goes.
        elsewhere = {d.volume_id: v.attach_node for d in disks
                     if (v := session.get(Volume, d.volume_id)) is not None
                     and v.attach_node not in (None, d.instance_id)}
    try:
        for volume_id, node in elsewhere.items():
            storage.unexport(zone, volume_id, node)  # type: ignore[arg-type]
        for disk in disks:
            if disk.create is not None:
                storage.create_volume(zone, disk.create)
        _wait_available(db, storage, zone, [d for d in disks if d.create is not None], timeout)
        exported = {d.volume_id: storage.export(zone, d.volume_id, d.instance_id) for d in disks}
    except StorageError as exc:
        raise BootFailed(f"the storage controller of zone {zone}: {exc.code}: {exc.message}") from None
    result: dict[str, list[BootVolume]] = {}
    with db.session() as session:
        for disk in disks:
            volume = session.get(Volume, disk.volume_id)
            if volume is None or volume.state == "deleted":
                raise BootFailed(f"volume {disk.volume_id} is gone")
            if volume.instance_id not in (None, disk.instance_id):
                raise BootFailed(f"volume {disk.volume_id} was attached to {volume.instance_id} "
                                 "meanwhile")
            if volume.attach_state is None:
                volumes.move_attachment(volume, "attaching", instance_id=disk.instance_id,
                                        device=disk.device)
            volume.attach_node = disk.instance_id   # the export's key (see the docstring)
            volume.delete_on_termination = disk.delete_on_termination
            result.setdefault(disk.instance_id, []).append(BootVolume(
                volume_id=disk.volume_id, device=disk.device, root=disk.root,
                source=source_of(exported[disk.volume_id])))
            note(f"{disk.volume_id} ready for {disk.instance_id} as {disk.device}"
                 + (" (root)" if disk.root else ""))
    return result


def _wait_available(db: Database, storage: StorageClient, zone: str, disks: list[BootDisk],
                    timeout: float) -> None:
    waiting = {d.volume_id for d in disks}
    deadline = time.monotonic() + timeout
    while waiting:
        for volume_id in sorted(waiting):
            info = storage.volume(zone, volume_id)
            if info is None or info.state == "creating":
                continue
            if info.state not in ("available", "in-use"):
                why = info.reason.message if info.reason else info.state
                with db.session() as session:
                    row = session.get(Volume, volume_id)
                    if row is not None and row.state == "creating":
                        volumes.transition(row, "error", info.reason)
                raise BootFailed(f"volume {volume_id} could not be made: {why}")
            with db.session() as session:
                row = session.get(Volume, volume_id)
                if row is not None and row.state == "creating":
                    volumes.transition(row, "available")
            waiting.discard(volume_id)
        if waiting and time.monotonic() > deadline:
            raise BootFailed(f"volumes {', '.join(sorted(waiting))} were not ready after {timeout:.0f} s")
        if waiting:
            time.sleep(POLL_SECONDS)


def abandon(db: Database, storage: StorageClient, zone: str, disks: list[BootDisk]) -> None:
    """A launch that never started: the volumes it made and did not attach are deleted (the
    settle pass of clc/volume_settler.py gives back, or deletes, those recorded attaching)."""
    for disk in disks:
        if disk.create is None:
            continue
        with db.session() as session:
            volume = session.get(Volume, disk.volume_id)
            if volume is None or volume.instance_id is not None or volume.state == "deleted":
                continue
            if volume.state in ("creating", "available", "error"):
                volumes.transition(volume, "deleting")
        try:
            storage.delete_volume(zone, disk.volume_id)
        except StorageError:
            continue    # the settle pass deletes a `deleting` volume again
        with db.session() as session:
            volume = session.get(Volume, disk.volume_id)
            if volume is not None and volume.state == "deleting":
                volumes.transition(volume, "deleted")
