"""Images as the CLC keeps them: registering a bundle (its manifest read from Walrus and its
signature checked against the caller's certificates), who may see and launch an image, and
which images an instance boots from.

Ids are Eucalyptus's: `emi-` (machine), `eki-` (kernel), `eri-` (ramdisk) + 8 hex digits."""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Depends
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from clc.accounts import ensure_admin
from clc.ids import new_id
from clc.models.accounts import Account
from clc.models.images import Image, LaunchPermission
from services import pki
from services.bundles import (BundleError, Manifest, build_bundle, bundle_keys, parse_manifest,
                              verify_manifest)
from services.bundles.upload import s3_client, upload_bundle
from services.config import CloudConfig
from services.db import Database
from services.errors import EC2Error
from services.messages.identity import AccessKeyInfo
from services.internal import InternalClient
from services.messages.images import (IMAGE_ROUTE, PREPARE_ROUTE, TINY_IMAGE_ROUTE, PreparedImage,
                                      PrepareImage, TinyImage)
from services.messages.node import ImageRef

PREFIXES = {"machine": "emi", "kernel": "eki", "ramdisk": "eri"}
KIND_OF_PREFIX = {v: k for k, v in PREFIXES.items()}
ARCHITECTURES = ("i386", "x86_64", "arm64")
_ID = re.compile(r"^(emi|eki|eri|ami|aki|ari)-[0-9a-f]{8,17}$")
_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")

# (bucket, key) -> manifest bytes; the default reads Walrus with the cloud admin's key.
ManifestFetcher = Callable[[str, str], bytes]


# ---------------------------------------------------------------------- errors

def malformed(image_id: str) -> EC2Error:
    return EC2Error("InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "emi-...")')


def not_found(image_id: str) -> EC2Error:
    return EC2Error("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")


def invalid_manifest(reason: str) -> EC2Error:
    return EC2Error("InvalidManifest", f"Invalid manifest: {reason}")


# ---------------------------------------------------------------------- visibility

def check_id(image_id: str) -> None:
    if not _ID.match(image_id or ""):
        raise malformed(image_id)


def launchable_clause(account_id: str) -> Any:
    """SQL condition: `account_id` owns the image, it is public, or it was shared with them."""
    shared = exists().where(LaunchPermission.image_id == Image.id,
                            LaunchPermission.account_id == account_id)
    return or_(Image.account_id == account_id, Image.is_public.is_(True), shared)


def visible_images(db: Session, account_id: str) -> list[Image]:
    return list(db.scalars(select(Image).where(Image.state != "deregistered",
                                               launchable_clause(account_id)).order_by(Image.id)))


def can_launch(db: Session, image: Image, account_id: str) -> bool:
    if image.account_id == account_id or image.is_public:
        return True
    return db.scalar(select(LaunchPermission.id).where(
        LaunchPermission.image_id == image.id, LaunchPermission.account_id == account_id)) is not None


def find_image(db: Session, account_id: str, image_id: str, *, owned: bool = False) -> Image:
    """An image `account_id` can see (or, with `owned`, owns); EC2's NotFound otherwise, as if
    another account's private image did not exist."""
    check_id(image_id)
    image = db.get(Image, image_id)
    if image is None or image.state == "deregistered" or not can_launch(db, image, account_id):
        raise not_found(image_id)
    if owned and image.account_id != account_id:
        raise EC2Error("AuthFailure", f"Not authorized for image:{image_id}", 401)
    return image


def shared_with(db: Session, image_id: str) -> list[str]:
    return list(db.scalars(select(LaunchPermission.account_id)
                           .where(LaunchPermission.image_id == image_id)
                           .order_by(LaunchPermission.account_id)))


def account_exists(db: Session, account_id: str) -> bool:
    return db.get(Account, account_id) is not None


# ---------------------------------------------------------------------- registration

def split_location(location: str) -> tuple[str, str]:
    bucket, _, key = (location or "").lstrip("/").partition("/")
    if not bucket or not key or not key.endswith(".xml"):
        raise invalid_manifest(f"ImageLocation must read bucket/prefix.manifest.xml, not {location!r}")
    return bucket, key


_S3_CLIENTS: dict[tuple[str, str], Any] = {}
_S3_LOCK = threading.Lock()


def _cached_s3(endpoint: str, key: AccessKeyInfo, region: str) -> Any:
    # Building a boto3 client costs more than the manifest read itself; clients are thread-safe.
    with _S3_LOCK:
        client = _S3_CLIENTS.get((endpoint, key.access_key))
        if client is None:
            client = _S3_CLIENTS[(endpoint, key.access_key)] = s3_client(endpoint, key, region)
        return client


def walrus_fetcher(config: CloudConfig, admin: AccessKeyInfo) -> ManifestFetcher:
    return s3_fetcher(_cached_s3(config.service_url("walrus"), admin, config.REGION))


def s3_fetcher(client: Any) -> ManifestFetcher:
    """Manifests read with a boto3 S3 client; a failed read is EC2's answer, not a traceback."""
    def fetch(bucket: str, key: str) -> bytes:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise invalid_manifest(f"cannot read {bucket}/{key} from Walrus ({code})") from None
        except BotoCoreError as exc:
            raise EC2Error("InternalError", f"Walrus cannot be reached to read the manifest: {exc}",
                           500) from None
    return fetch


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


def register(db: Session, account_id: str, home: Path, fetch: ManifestFetcher, *, location: str,
             name: str | None = None, description: str | None = None,
             architecture: str | None = None, kernel_id: str | None = None,
             ramdisk_id: str | None = None, public: bool = False) -> Image:
    bucket, key = split_location(location)
    manifest = checked_manifest(fetch(bucket, key), account_id, home)
    name = name or manifest.name
    if not _NAME.match(name or ""):
        raise EC2Error("InvalidAMIName.Malformed",
                       f"AMI names must be between 3 and 128 characters long, and may contain "
                       f"letters, numbers, '(', ')', '.', '-', '/' and '_': {name!r}")
    taken = db.scalar(select(Image.id).where(Image.account_id == account_id, Image.name == name,
                                             Image.state != "deregistered"))
    if taken:
        raise EC2Error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {taken}")
    architecture = architecture or manifest.architecture
    if architecture not in ARCHITECTURES:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({architecture}) for parameter architecture is invalid.")
    kind = manifest.image_type
    if kind != "machine" and (kernel_id or ramdisk_id):
        raise EC2Error("InvalidParameterCombination",
                       f"A {kind} image cannot name a kernel or ramdisk")
    image = Image(id=new_id(PREFIXES[kind]), account_id=account_id, kind=kind, name=name,
                  description=description, location=f"{bucket}/{key}", state="available",
                  architecture=architecture,
                  kernel_id=_referenced(db, account_id, kernel_id or manifest.kernel_id, "kernel"),
                  ramdisk_id=_referenced(db, account_id, ramdisk_id or manifest.ramdisk_id, "ramdisk"),
                  is_public=public, image_size=manifest.size,
                  checksum=f"sha256:{manifest.unbundled_sha256}" if manifest.unbundled_sha256 else None)
    db.add(image)
    db.flush()
    return image


def unshare(db: Session, image: Image) -> None:
    """From now on only the owner may launch `image`: not public, shared with no account."""
    image.is_public = False
    for row in db.scalars(select(LaunchPermission).where(LaunchPermission.image_id == image.id)):
        db.delete(row)


def deregister(db: Session, account_id: str, image_id: str) -> None:
    image = find_image(db, account_id, image_id, owned=True)
    image.state = "deregistered"
    unshare(db, image)


# ---------------------------------------------------------------------- launching

def image_url(walrus_internal_url: str, image: Image) -> str:
    """Where a node streams the decrypted image: Walrus's signed internal image route."""
    bucket, _, key = image.location.partition("/")
    return walrus_internal_url.rstrip("/") + IMAGE_ROUTE.format(bucket=quote(bucket, safe=""),
                                                                key=quote(key, safe="/"))


def image_ref(walrus_internal_url: str, image: Image) -> ImageRef:
    return ImageRef(image_id=image.id, url=image_url(walrus_internal_url, image),
                    checksum=image.checksum, size_bytes=image.image_size)


@dataclass(frozen=True)
class LaunchImages:
    machine: Image
    kernel: Image | None     # explicit KernelId, else the image's own
    ramdisk: Image | None

    def refs(self, walrus_internal_url: str) -> tuple[ImageRef, ImageRef | None, ImageRef | None]:
        def ref(image: Image | None) -> ImageRef | None:
            return image_ref(walrus_internal_url, image) if image is not None else None
        return image_ref(walrus_internal_url, self.machine), ref(self.kernel), ref(self.ramdisk)


def _launchable(db: Session, account_id: str, image_id: str, kind: str) -> Image:
    check_id(image_id)
    image = db.get(Image, image_id)
    if image is None or not can_launch(db, image, account_id):
        raise not_found(image_id)
    if image.state != "available":
        reason = image.state_reason or f"the image is {image.state}"
        raise EC2Error("InvalidAMIID.Unavailable", f"The image id '[{image_id}]' is not available: {reason}")
    if image.kind != kind:
        raise EC2Error("InvalidParameterValue", f"Image {image_id} is a {image.kind} image, not a {kind} image")
    return image


def resolve_for_launch(db: Session, account_id: str, image_id: str, kernel_id: str | None,
                       ramdisk_id: str | None) -> LaunchImages:
    machine = _launchable(db, account_id, image_id, "machine")
    kernel_id = kernel_id or machine.kernel_id
    ramdisk_id = ramdisk_id or machine.ramdisk_id
    return LaunchImages(machine,
                        _launchable(db, account_id, kernel_id, "kernel") if kernel_id else None,
                        _launchable(db, account_id, ramdisk_id, "ramdisk") if ramdisk_id else None)


def fail_image(db: Session, image_id: str, reason: str) -> None:
    """Walrus could not turn the bundle into an image: launches are refused with `reason`."""
    image = db.get(Image, image_id)
    if image is not None and image.state != "deregistered":
        image.state, image.state_reason = "failed", reason


def sync_with_walrus(db: Session, walrus: InternalClient, image_id: str) -> PreparedImage:
    """Ask Walrus to decrypt the image's bundle now (if it has not yet) and record the outcome:
    a bundle Walrus cannot use fails the image with Walrus's reason. Slow the first time (the
    whole image is decrypted); call it off the request path, e.g. from a reconcile loop."""
    image = db.get(Image, image_id)
    if image is None:
        raise not_found(image_id)
    bucket, _, key = image.location.partition("/")
    status: PreparedImage = walrus.call("POST", PREPARE_ROUTE,
                                        PrepareImage(bucket=bucket, manifest_key=key), PreparedImage)
    if status.state == "failed":
        fail_image(db, image_id, f"{status.code}: {status.reason}")
    elif image.state == "failed":
        image.state, image.state_reason = "available", None
    if status.sha256 and not image.checksum:
        image.checksum = f"sha256:{status.sha256}"
    return status


# ---------------------------------------------------------------------- the first image

TINY_BUCKET = "eucasim-images"
TINY_NAME = "eucasim-tiny"


def register_tiny_image(db: Session, config: CloudConfig, admin: AccessKeyInfo, *, s3: Any = None,
                        bucket: str = TINY_BUCKET, name: str = TINY_NAME,
                        size_bytes: int = 1024 * 1024) -> str:
    """A public machine image for newcomers, so `run-instances` works on a fresh cloud: 1 MiB of
    zeros, bundled with the admin's certificate, uploaded to `bucket` with the admin's key and
    registered. Idempotent: a second call returns the image registered by the first.
    Walrus must be up (`s3` is a boto3 S3 client for it; None builds one from `config`)."""
    existing = db.scalar(select(Image.id).where(Image.account_id == admin.account_id,
                                                Image.name == name, Image.state == "available"))
    if existing:
        return existing
    home = config.EUCASIM_HOME
    cloud = pki.ensure_cloud_ca(home)
    user = pki.ensure_user_certificate(home, admin.account_id, admin.user_name)
    client = s3 or s3_client(config.service_url("walrus"), admin, config.REGION)
    with tempfile.TemporaryDirectory(prefix="eucasim-tiny-") as folder:
        raw = Path(folder) / f"{name}.img"
        with open(raw, "wb") as handle:
            handle.truncate(size_bytes)
        bundle = build_bundle(raw, Path(folder) / "bundle", account_id=admin.account_id,
                              cloud_cert=cloud.certificate(), user_cert=user.certificate(),
                              user_key=user.private_key(), name=name)
        location = upload_bundle(client, bundle, bucket)
    image = register(db, admin.account_id, home, s3_fetcher(client), location=location, name=name,
                     description="eucasim's tiny machine image (1 MiB of zeros)", public=True)
    return image.id


def tiny_image_router(db: Database, config: CloudConfig, internal_auth: Any) -> APIRouter:
    """`POST /internal/images/tiny` on the CLC: the launcher calls it once every service is up
    (services/ may not import clc/, so it cannot call register_tiny_image itself)."""
    router = APIRouter(dependencies=[Depends(internal_auth)])

    @router.post(TINY_IMAGE_ROUTE, response_model=TinyImage)
    def tiny_image() -> TinyImage:  # sync: FastAPI runs it in a worker thread
        with db.session() as session:
            admin = ensure_admin(session)
            return TinyImage(image_id=register_tiny_image(session, config, admin))

    return router
