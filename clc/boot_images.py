"""Which images an instance boots from (its machine image and the kernel and ramdisk it names
or RunInstances overrides), checked for the launching account, and where a node streams each
one from: Walrus's signed internal image route."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.orm import Session

from clc.image_access import can_launch, check_id, not_found
from clc.models.images import Image
from services.errors import EC2Error
from services.messages.images import IMAGE_ROUTE
from services.messages.node import ImageRef


def image_url(walrus_internal_url: str, image: Image) -> str:
    """Where a node streams the decrypted image."""
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
