"""A zone's cluster and storage controllers registered on hosts of their own
(`eucasim register-cluster|register-sc`). A zone with no row here uses the configuration's
CC_URL / SC_URL (this host when empty)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.clock import utcnow


class ZoneServiceRow(Base):
    __tablename__ = "zone_services"
    # One CC and one SC per zone, as in Eucalyptus.
    __table_args__ = (UniqueConstraint("type", "zone"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))      # cluster, storage
    zone: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
