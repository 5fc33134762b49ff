"""Who may see and launch an image, and the changes ModifyImageAttribute makes to that.

An account sees (and may launch) its own images, public ones and those shared with it through
a launch permission; anyone else's private image is reported exactly like a missing one.
Deregistered images are seen by nobody."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from clc.models.images import Image, LaunchPermission
from services.errors import EC2Error
from services.ids import IMAGE_ID


def malformed(image_id: str) -> EC2Error:
    return EC2Error("InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "emi-...")')


def not_found(image_id: str) -> EC2Error:
    return EC2Error("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")


def check_id(image_id: str) -> None:
    if not IMAGE_ID.match(image_id or ""):
        raise malformed(image_id)


# ---------------------------------------------------------------------- reading the rule

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


def _sees(db: Session, account_id: str, image: Image | None) -> bool:
    return image is not None and image.state != "deregistered" and can_launch(db, image, account_id)


def is_visible(db: Session, account_id: str, image_id: str) -> bool:
    return _sees(db, account_id, db.get(Image, image_id))


def find_image(db: Session, account_id: str, image_id: str, *, owned: bool = False) -> Image:
    """An image `account_id` can see (or, with `owned`, owns); EC2's NotFound otherwise."""
    check_id(image_id)
    image = db.get(Image, image_id)
    if image is None or not _sees(db, account_id, image):
        raise not_found(image_id)
    if owned and image.account_id != account_id:
        raise EC2Error("AuthFailure", f"Not authorized for image:{image_id}", 401)
    return image


def shared_with(db: Session, image_id: str) -> list[str]:
    """The accounts other than the owner that may launch the image, sorted."""
    return list(db.scalars(select(LaunchPermission.account_id)
                           .where(LaunchPermission.image_id == image_id)
                           .order_by(LaunchPermission.account_id)))


def shares_of(db: Session, image_ids: Iterable[str]) -> dict[str, set[str]]:
    """image id -> the accounts it is shared with, for many images in one query."""
    shares: dict[str, set[str]] = {}
    for image_id, account_id in db.execute(
            select(LaunchPermission.image_id, LaunchPermission.account_id)
            .where(LaunchPermission.image_id.in_(list(image_ids)))):
        shares.setdefault(image_id, set()).add(account_id)
    return shares


def executable_by(image: Image, account_ids: Iterable[str], everyone: bool,
                  shares: dict[str, set[str]]) -> bool:
    """DescribeImages' ExecutableUsers: any of `account_ids` may launch `image` (owner or
    shared), or `everyone` was asked for and the image is public."""
    if everyone and image.is_public:
        return True
    return any(a == image.account_id or a in shares.get(image.id, set()) for a in account_ids)


# ---------------------------------------------------------------------- changing it

def set_public(image: Image, public: bool) -> None:
    image.is_public = public


def _permission(db: Session, image: Image, account_id: str) -> LaunchPermission | None:
    return db.scalar(select(LaunchPermission).where(LaunchPermission.image_id == image.id,
                                                    LaunchPermission.account_id == account_id))


def grant(db: Session, image: Image, account_id: str) -> None:
    """`account_id` may launch `image` from now on (the owner always may: nothing to record)."""
    if account_id != image.account_id and _permission(db, image, account_id) is None:
        db.add(LaunchPermission(image_id=image.id, account_id=account_id))
        db.flush()


def revoke(db: Session, image: Image, account_id: str) -> None:
    row = _permission(db, image, account_id)
    if row is not None:
        db.delete(row)
        db.flush()


def unshare(db: Session, image: Image) -> None:
    """From now on only the owner may launch `image`: not public, shared with no account."""
    image.is_public = False
    for row in db.scalars(select(LaunchPermission).where(LaunchPermission.image_id == image.id)):
        db.delete(row)
