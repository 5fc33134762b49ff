"""Keeping an image's state in step with what Walrus can do with its bundle: Walrus decrypts
the bundle (once, on first use); a bundle it cannot use fails the image with Walrus's reason,
and one it can use again (a part uploaded anew) makes it available again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from clc.image_access import not_found
from clc.image_state import transition
from clc.models.images import Image
from clc.walrus_client import ManifestUnreadable, WalrusClient
from services.messages.images import PreparedImage

MANIFEST_MISSING = "Bundle.ManifestMissing"


def sync_with_walrus(db: Session, walrus: WalrusClient, image_id: str) -> PreparedImage:
    """Ask Walrus to prepare the image's bundle now and record the outcome on the image. Slow
    the first time (the whole image is decrypted): call it off the request path."""
    image = db.get(Image, image_id)
    if image is None:
        raise not_found(image_id)
    bucket, _, key = image.location.partition("/")
    try:
        status = walrus.prepare_image(bucket, key)
    except ManifestUnreadable as exc:  # the owner deleted the manifest: nothing can boot it
        status = PreparedImage(state="failed", code=MANIFEST_MISSING, reason=str(exc))
    if image.state == "deregistered":
        return status
    if status.state == "failed":
        transition(image, "failed", f"{status.code}: {status.reason}")
    else:
        transition(image, "available")
    if status.sha256 and not image.checksum:
        image.checksum = f"sha256:{status.sha256}"
    return status
