"""Registering a bundle as an image — its manifest read from Walrus, its signature checked
against the owner's certificates — and deregistering it.

Ids are Eucalyptus's: `emi-` (machine), `eki-` (kernel), `eri-` (ramdisk) + 8 hex digits."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc.image_access import find_image, unshare
from clc.image_state import REGISTERED, transition
from clc.models.images import Image
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
