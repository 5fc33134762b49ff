"""Volumes and snapshots as the CLC keeps them: what the user asked for (size, type, zone, the
attachment they want) and the state the zone's SC last reported. The SC owns the bytes; these
rows own the names, the owner, the tags' anchor and the attachment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.clock import utcnow


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("account_id", "client_token"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # vol-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    zone: Mapped[str] = mapped_column(String(64))
    size_gib: Mapped[int] = mapped_column(Integer)
    volume_type: Mapped[str] = mapped_column(String(16), default="standard")
    snapshot_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="creating", index=True)
    # Why the volume is where it is when that is news: the SC's reason for `error`, or why
    # an attachment was given up.
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # The one attachment a volume may have (EC2 without multi-attach).
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attach_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attach_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attach_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    force_detach: Mapped[bool] = mapped_column(Boolean, default=False)


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # snap-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    volume_id: Mapped[str] = mapped_column(String(32))
    volume_size_gib: Mapped[int] = mapped_column(Integer)
    # The SC snapshot holding the bytes (`snapset-<data_id>` in Walrus): the snapshot's own id,
    # or the source's for a CopySnapshot, which shares the stored bytes.
    data_id: Mapped[str] = mapped_column(String(32), index=True)
    zone: Mapped[str] = mapped_column(String(64))  # the SC that took it (and deletes it)
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    reason_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    consistency: Mapped[str] = mapped_column(String(32), default="crash-consistent")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SnapshotPermission(Base):
    """createVolumePermission given to one other account."""

    __tablename__ = "snapshot_permissions"
    __table_args__ = (UniqueConstraint("snapshot_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(String(12))
