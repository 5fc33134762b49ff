"""Cloud properties an administrator set (`eucasim property set`): they beat eucalyptus.conf
from then on, across restarts, as Eucalyptus's properties did. A property never set has no
row and follows the configuration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clc.models.base import Base
from services.clock import utcnow


class PropertyRow(Base):
    __tablename__ = "properties"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
