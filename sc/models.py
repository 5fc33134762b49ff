"""The SC's own database: its volumes, their exports to nodes, and the snapshots it took.
What exists on disk (the sparse files, qemu-nbd processes, objects in Walrus) is described by
these rows; sc/volumes.py, sc/exports.py and sc/snapshots.py keep the two in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    size_gib: Mapped[int] = mapped_column(Integer)
    # One of EC2's: creating, available, in-use, deleting, deleted, error (sc/states.py moves it).
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    snapshot_id: Mapped[str | None] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Export(Base):
    """One volume served to one node. For nbd, the qemu-nbd process's pid and port, so a
    restarted SC can kill what a crashed one left and serve the export again."""

    __tablename__ = "exports"
    __table_args__ = (UniqueConstraint("volume_id", "node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    node: Mapped[str] = mapped_column(String(256))
    driver: Mapped[str] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(256))
    port: Mapped[int | None] = mapped_column(Integer)
    export_name: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int | None] = mapped_column(Integer)
    user: Mapped[str | None] = mapped_column(String(128))   # rbd: the Ceph user the node connects as
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(32), index=True)
    volume_size_gib: Mapped[int] = mapped_column(Integer)
    # pending, completed, error, deleting, deleted (sc/states.py moves it).
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    bucket: Mapped[str] = mapped_column(String(64))
    # The frozen copy being uploaded; removed once the upload ends either way.
    staging_path: Mapped[str | None] = mapped_column(Text)
    freeze_method: Mapped[str] = mapped_column(String(16))
    freeze_ms: Mapped[float] = mapped_column(Float)
    data_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    uploaded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
