"""Registering a bundle as an image — its manifest read from Walrus, its signature checked
against the owner's certificates — and deregistering it.

Ids are Eucalyptus's: `emi-` (machine), `eki-` (kernel), `eri-` (ramdisk) + 8 hex digits."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc import snapshots, volumes
from clc.image_access import find_image, unshare
from clc.image_state import REGISTERED, transition
from clc.models.images import Image
from clc.models.volumes import Snapshot, Volume
from clc.walrus_client import ManifestSource, ManifestUnreadable, WalrusUnavailable
from services import pki
from services.bundles import BundleError, Manifest, bundle_keys, parse_manifest, verify_manifest
from services.errors import EC2Error
from services.ids import new_id

PREFIXES = {"machine": "emi", "kernel": "eki", "ramdisk": "eri"}
ARCHITECTURES = ("i386", "x86_64", "arm64")
_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def invalid_manifest(reason: str) -> EC2Error:
    return EC2Error("InvalidManifest", f"Invalid manifest: {reason}")


def split_location(location: str) -> tuple[str, str]:
    bucket, _, key = (location or "").lstrip("/").partition("/")
    if not bucket or not key or not key.endswith(".xml"):
        raise invalid_manifest(f"ImageLocation must read bucket/prefix.manifest.xml, not {location!r}")
    return bucket, key


def read_manifest(manifests: ManifestSource, bucket: str, key: str) -> bytes:
    try:
        return manifests.read_manifest(bucket, key)
    except ManifestUnreadable as exc:
        raise invalid_manifest(str(exc)) from None
    except WalrusUnavailable as exc:
        raise EC2Error("InternalError", f"{exc}", 500) from None


def checked_manifest(data: bytes, account_id: str, home: Path) -> Manifest:
    """Parse, check the signature against the account's certificates and that the bundle was
    encrypted for this cloud."""
    try:
        manifest = parse_manifest(data)
        verify_manifest(manifest, pki.account_certificates(home, account_id))
        bundle_keys(manifest, pki.ensure_cloud_ca(home).private_key())
    except BundleError as exc:
        raise invalid_manifest(exc.reason) from None
    return manifest


def _referenced(db: Session, account_id: str, image_id: str | None, kind: str) -> str | None:
    if not image_id:
        return None
    image = find_image(db, account_id, image_id)
    if image.kind != kind:
        raise EC2Error("InvalidParameterValue", f"Image {image_id} is not a {kind} image")
    return image.id


def _check_name(db: Session, account_id: str, name: str) -> None:
    if not _NAME.match(name or ""):
        raise EC2Error("InvalidAMIName.Malformed",
                       f"AMI names must be between 3 and 128 characters long, and may contain "
                       f"letters, numbers, '(', ')', '.', '-', '/' and '_': {name!r}")
    taken = db.scalar(select(Image.id).where(Image.account_id == account_id, Image.name == name,
                                             Image.state != "deregistered"))
    if taken:
        raise EC2Error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {taken}")


def register(db: Session, account_id: str, home: Path, manifests: ManifestSource, *,
             location: str, name: str | None = None, description: str | None = None,
             architecture: str | None = None, kernel_id: str | None = None,
             ramdisk_id: str | None = None, public: bool = False) -> Image:
    bucket, key = split_location(location)
    manifest = checked_manifest(read_manifest(manifests, bucket, key), account_id, home)
    name = name or manifest.name
    _check_name(db, account_id, name)
    architecture = architecture or manifest.architecture
    if architecture not in ARCHITECTURES:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({architecture}) for parameter architecture is invalid.")
    kind = manifest.image_type
    if kind != "machine" and (kernel_id or ramdisk_id):
        raise EC2Error("InvalidParameterCombination",
                       f"A {kind} image cannot name a kernel or ramdisk")
    image = Image(id=new_id(PREFIXES[kind]), account_id=account_id, kind=kind, name=name,
                  description=description, location=f"{bucket}/{key}", state=REGISTERED,
                  architecture=architecture,
                  kernel_id=_referenced(db, account_id, kernel_id or manifest.kernel_id, "kernel"),
                  ramdisk_id=_referenced(db, account_id, ramdisk_id or manifest.ramdisk_id, "ramdisk"),
                  is_public=public, image_size=manifest.size,
                  checksum=f"sha256:{manifest.unbundled_sha256}" if manifest.unbundled_sha256 else None)
    db.add(image)
    db.flush()
    return image


def deregister(db: Session, account_id: str, image_id: str) -> None:
    image = find_image(db, account_id, image_id, owned=True)
    transition(image, "deregistered", "deregistered by its owner")
    unshare(db, image)


# ----- EBS-backed images: the root is a snapshot, not a bundle --------------------------------

def _ebs_mapping(db: Session, account_id: str, mapping: dict[str, Any]) -> dict[str, Any]:
    """One BlockDeviceMapping as an image keeps it (what RunInstances merges user mappings
    over, clc/launch_volumes.py), checked: a snapshot the owner can see, a size it fits in."""
    name = mapping.get("DeviceName") or ""
    if not name:
        raise bad_mapping("A block device mapping needs a DeviceName.")
    if mapping.get("VirtualName"):
        return {"DeviceName": name, "VirtualName": mapping["VirtualName"]}
    ebs = mapping.get("Ebs")
    if ebs is None:
        raise bad_mapping(f"The mapping of {name} names neither an EBS volume nor a virtual device")
    snapshot_id, size = ebs.get("SnapshotId"), ebs.get("VolumeSize")
    if not snapshot_id and size is None:
        raise bad_mapping(f"Either snapshot ID or volume size must be provided for: {name}")
    kept: dict[str, Any] = {"DeleteOnTermination": True if ebs.get("DeleteOnTermination") is None
                            else bool(ebs["DeleteOnTermination"]),
                            "VolumeType": volumes.volume_type(ebs.get("VolumeType"))}
    if snapshot_id:
        snapshot = snapshots.visible(db, account_id, [snapshot_id])[0]
        if size is not None and size < snapshot.volume_size_gib:
            raise bad_mapping(f"Volume of size {size}GB is smaller than snapshot '{snapshot.id}', "
                              f"expect size >= {snapshot.volume_size_gib}GB")
        kept["SnapshotId"] = snapshot.id
        size = size if size is not None else snapshot.volume_size_gib
    volumes.check_size(size, kept["VolumeType"])
    kept["VolumeSize"] = size
    return {"DeviceName": name, "Ebs": kept}


def register_ebs(db: Session, account_id: str, *, name: str, root_device_name: str | None,
                 mappings: list[dict[str, Any]], description: str | None = None,
                 architecture: str | None = None, kernel_id: str | None = None,
                 ramdisk_id: str | None = None) -> Image:
    """RegisterImage without a bundle: RootDeviceName plus a mapping whose EBS snapshot is the
    root. Everything is checked before the image is recorded."""
    _check_name(db, account_id, name)
    if not root_device_name:
        raise EC2Error("MissingParameter", "An EBS-backed image needs the parameter RootDeviceName "
                       "(or ImageLocation for an image bundled in Walrus).")
    architecture = architecture or "x86_64"
    if architecture not in ARCHITECTURES:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({architecture}) for parameter architecture is invalid.")
    kept = [_ebs_mapping(db, account_id, m) for m in mappings]
    devices = [volumes.short_device(m["DeviceName"]) for m in kept]
    for device in devices:
        if devices.count(device) > 1:
            raise bad_mapping(f"The device '{device}' is used in more than one block-device mapping")
    root = next((m for m in kept if volumes.short_device(m["DeviceName"])
                 == volumes.short_device(root_device_name)), None)
    if root is None or not root.get("Ebs", {}).get("SnapshotId"):
        raise EC2Error("InvalidParameterValue",
                       f"The root device {root_device_name} needs a block device mapping to an "
                       "EBS snapshot.")
    image = Image(id=new_id(PREFIXES["machine"]), account_id=account_id, kind="machine", name=name,
                  description=description, location=f"{account_id}/{name}", state=REGISTERED,
                  architecture=architecture,
                  kernel_id=_referenced(db, account_id, kernel_id, "kernel"),
                  ramdisk_id=_referenced(db, account_id, ramdisk_id, "ramdisk"),
                  root_device_name=root_device_name, root_device_type="ebs",
                  block_devices_json=json.dumps(kept))
    db.add(image)
    db.flush()
    return image


def image_of_instance(db: Session, account_id: str, instance_id: str, name: str,
                      description: str | None, kernel_id: str | None, ramdisk_id: str | None,
                      root_device_name: str, snapshot_of: Callable[[Volume], Snapshot]) -> Image:
    """CreateImage: a snapshot of each volume the instance has attached (its root among them),
    registered as a new EBS-backed image. The name is checked before any snapshot is taken."""
    _check_name(db, account_id, name)
    attached = [v for v in volumes.attached_to(db, [instance_id])[instance_id]
                if v.attach_state == "attached"]
    mappings = []
    for volume in attached:
        snapshot = snapshot_of(volume)
        device = root_device_name if volumes.short_device(volume.device or "") == \
            volumes.short_device(root_device_name) else volume.device
        mappings.append({"DeviceName": device, "Ebs": {
            "SnapshotId": snapshot.id, "VolumeSize": volume.size_gib,
            "DeleteOnTermination": True, "VolumeType": volume.volume_type}})
    return register_ebs(db, account_id, name=name, root_device_name=root_device_name,
                        mappings=mappings, description=description,
                        kernel_id=kernel_id, ramdisk_id=ramdisk_id)


def bad_mapping(message: str) -> EC2Error:
    return EC2Error("InvalidBlockDeviceMapping", message)
