"""The NC's own database: the instances of every node one NC process serves, as the NC last
left them (one database per process, each row naming its node by the node's URL prefix: "" in
a single-node process, "/node-3" in a simulated one). It is what the NC reconciles the
hypervisor against after a restart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.clock import utcnow
from services.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class InstanceRecord(Base):
    __tablename__ = "instances"

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32), index=True, default="")
    reservation_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason_message: Mapped[str | None] = mapped_column(Text)
    vm_name: Mapped[str] = mapped_column(String(32))
    cores: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[str] = mapped_column(String(32))
    # The whole RunInstance as received, so the instance can be prepared or restarted again.
    request_json: Mapped[str] = mapped_column(Text)
    launched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AttachmentRecord(Base):
    """An EBS volume attached to one of the node's instances (issue 9): what the NC puts back
    into the domain when it defines it again, and lists in the instance's reports. A row in
    state `attaching` is one whose hypervisor call had not returned when the NC stopped."""
    __tablename__ = "volume_attachments"

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32), index=True, default="")
    device: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    # The DiskSource as the CLC passed it on from the SC.
    source_json: Mapped[str] = mapped_column(Text)
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
