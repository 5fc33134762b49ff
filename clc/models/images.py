"""Machine, kernel and ramdisk images registered from bundles in Walrus, and who may launch
them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.clock import utcnow


class Image(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # emi-/eki-/eri-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # machine | kernel | ramdisk
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    location: Mapped[str] = mapped_column(String(1024))  # bucket/prefix.manifest.xml
    state: Mapped[str] = mapped_column(String(16))  # an ImageState; changed only by clc/image_state.py
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    kernel_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ramdisk_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    root_device_name: Mapped[str] = mapped_column(String(32), default="/dev/sda1")
    # instance-store (a bundle in Walrus at `location`) or ebs (the root is a snapshot).
    root_device_type: Mapped[str] = mapped_column(String(16), default="instance-store")
    # EC2's BlockDeviceMappings as registered (a JSON list of {DeviceName, Ebs: {...}}).
    block_devices_json: Mapped[str] = mapped_column(Text, default="[]")
    image_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # bytes, decrypted
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)  # of the decrypted image
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LaunchPermission(Base):
    """An account other than the owner that may launch the image (public is `Image.is_public`)."""

    __tablename__ = "launch_permissions"
    __table_args__ = (UniqueConstraint("image_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(String(12))
