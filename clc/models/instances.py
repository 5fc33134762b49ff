"""Instances as the user asked for them (`desired_state`) and as the zone last reported them
(`state`); the CLC's reconciliation loop moves the second towards the first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.clock import utcnow
from clc.models.base import Base


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("account_id", "client_token"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # i-…
    reservation_id: Mapped[str] = mapped_column(String(32), index=True)  # r-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    image_id: Mapped[str] = mapped_column(String(32))
    kernel_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ramdisk_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    instance_type: Mapped[str] = mapped_column(String(32))
    zone: Mapped[str] = mapped_column(String(64))
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_data_b64: Mapped[str] = mapped_column(Text, default="")
    # instance-store, or ebs: the root is a volume (its Volume row's device is the root
    # device), and the instance may be stopped and started again.
    root_device_type: Mapped[str] = mapped_column(String(16), default="instance-store")
    root_device_name: Mapped[str] = mapped_column(String(32), default="/dev/sda1")

    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    desired_state: Mapped[str] = mapped_column(String(16), default="running")
    state_reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state_reason_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_transition_reason: Mapped[str] = mapped_column(Text, default="")

    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True)
    private_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    public_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    vlan: Mapped[int | None] = mapped_column(Integer, nullable=True)

    launched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InstanceGroup(Base):
    """The security groups an instance was launched in (EC2 keeps their order)."""

    __tablename__ = "instance_groups"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[str] = mapped_column(String(32))
    group_name: Mapped[str] = mapped_column(String(255))
