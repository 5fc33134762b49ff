"""Key pairs, security groups and their rules, and tags: the first resources an account owns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clc.models.base import Base
from services.clock import utcnow


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # key-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    key_type: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SecurityGroup(Base):
    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # sg-…
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rules: Mapped[list[SecurityGroupRule]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="SecurityGroupRule.id",
        foreign_keys="SecurityGroupRule.group_id")


class SecurityGroupRule(Base):
    """One ingress permission: a protocol and port range from one CIDR or one source group."""

    __tablename__ = "security_group_rules"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(8))  # tcp | udp | icmp | -1
    from_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_account_id: Mapped[str | None] = mapped_column(String(12), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    group: Mapped[SecurityGroup] = relationship(back_populates="rules", foreign_keys=[group_id])


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("account_id", "resource_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(64), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(256), default="")
