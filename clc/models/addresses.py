"""Elastic IP addresses an account has allocated from the zone's public pool. Dynamic public
addresses are not stored here: an instance's `public_ip` holds the one it was given."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.clock import utcnow


class ElasticAddress(Base):
    __tablename__ = "addresses"

    public_ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    allocation_id: Mapped[str] = mapped_column(String(32), unique=True)   # eipalloc-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain: Mapped[str] = mapped_column(String(16), default="standard")
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    association_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # eipassoc-…
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
