"""The CC's own database: the nodes it polls, the last instance reports they gave, and the
scheduler's saved state (the round-robin pointer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class NodeRow(Base):
    """One node as stored; the runtime side is tracked_node.TrackedNode."""

    __tablename__ = "nodes"

    url: Mapped[str] = mapped_column(String(512), primary_key=True)
    # The id the NC reports for itself; None until it has answered once.
    node_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="down")
    missed_polls: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The NC's last NodeResources as JSON, so a restarted CC knows sizes before the first poll.
    resources_json: Mapped[str | None] = mapped_column(Text)
    idle_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InstanceRecord(Base):
    """The last report an NC gave for one instance (kept so a down node's instances can still
    be described, with a reason)."""

    __tablename__ = "instances"

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_url: Mapped[str] = mapped_column(ForeignKey("nodes.url", ondelete="CASCADE"), index=True)
    report_json: Mapped[str] = mapped_column(Text)


class SchedulerState(Base):
    __tablename__ = "scheduler_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
