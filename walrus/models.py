"""Walrus's database: buckets, objects, multipart uploads and their parts.

Object bodies live in a blob store (walrus/blobs.py: files, or an S3 cluster); a row names its
body as a list of segments, each a blob id and its size (and, where parts share one blob, the
part's offset in it): a completed multipart upload is its parts' blobs without a copy on files,
and the one blob the cluster's own multipart completion made on an S3 cluster."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String,
                        Text, false)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Bucket(Base):
    __tablename__ = "buckets"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(12), index=True)
    owner_name: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime)
    # [{"type": "CanonicalUser"|"Group", "id": ..., "name": ..., "permission": ...}]
    acl: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    # None until versioning is first configured, then "Enabled" or "Suspended": S3 never lets
    # a bucket go back to unversioned.
    versioning: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)
    # CORS rules (walrus/cors.py); None when the bucket has no CORS configuration
    cors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True, default=None)
    # the bucket policy as its owner wrote it (JSON text); None when there is none
    policy: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    # lifecycle rules (walrus/lifecycle.py); None when the bucket has none
    lifecycle: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True,
                                                                   default=None)


class ObjectColumns:
    """What an object version is, current (`objects`) or not (`object_versions`)."""

    bucket: Mapped[str] = mapped_column(ForeignKey("buckets.name", ondelete="CASCADE"),
                                        primary_key=True)
    # SQLite compares TEXT bytewise (UTF-8), which is S3's listing order.
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    # "null" for what was written while the bucket was unversioned or suspended
    version_id: Mapped[str] = mapped_column(String(64), default="null", server_default="null")
    # A delete marker has no body (size 0, no segments): S3's answer for its key is 404.
    delete_marker: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    last_modified: Mapped[datetime] = mapped_column(DateTime)
    content_type: Mapped[str] = mapped_column(String(256))
    # user metadata (x-amz-meta-*) and the stored representation headers
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    checksums: Mapped[dict[str, str]] = mapped_column(JSON)
    segments: Mapped[list[list[Any]]] = mapped_column(JSON)
    parts_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_id: Mapped[str] = mapped_column(String(12))
    owner_name: Mapped[str] = mapped_column(String(128))
    acl: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    # object tags, [[key, value], ...] in the order they were given
    tags: Mapped[list[list[str]]] = mapped_column(JSON, default=list, server_default="[]")
    storage_class: Mapped[str] = mapped_column(String(32), default="STANDARD",
                                               server_default="STANDARD")


class Object(ObjectColumns, Base):
    """The current version of each key; the only row a GET, HEAD or listing reads. A key's
    older versions are in `object_versions`, and a key has some only if it has a row here."""

    __tablename__ = "objects"


class ObjectVersion(ObjectColumns, Base):
    """A noncurrent version, kept while its bucket is versioned (or suspended)."""

    __tablename__ = "object_versions"
    __table_args__ = (Index("ix_object_versions_order", "bucket", "key", "seq"),)

    version_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Order of becoming noncurrent, which is the order of creation: newest has the highest.
    seq: Mapped[int] = mapped_column(BigInteger)
    noncurrent_since: Mapped[datetime] = mapped_column(DateTime)


class Upload(Base):
    __tablename__ = "uploads"

    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("buckets.name", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(1024))
    initiated: Mapped[datetime] = mapped_column(DateTime)
    owner_id: Mapped[str] = mapped_column(String(12))
    owner_name: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(256))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    acl: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tags: Mapped[list[list[str]]] = mapped_column(JSON, default=list, server_default="[]")
    storage_class: Mapped[str] = mapped_column(String(32), default="STANDARD",
                                               server_default="STANDARD")
    # On a store that maps uploads onto its cluster's (walrus/s3_multipart.py): the blob id the
    # cluster's upload is writing and the cluster's id of that upload; None on files, and for
    # an upload begun before the mapping (its parts are blobs of their own).
    blob_id: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    cluster_upload_id: Mapped[str | None] = mapped_column(String(256), nullable=True,
                                                          default=None)


class Part(Base):
    __tablename__ = "parts"

    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.upload_id", ondelete="CASCADE"),
                                           primary_key=True)
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    # the part's own blob, or (an upload mapped onto the cluster's) the upload's blob
    blob_id: Mapped[str] = mapped_column(String(64))
    last_modified: Mapped[datetime] = mapped_column(DateTime)
    checksums: Mapped[dict[str, str]] = mapped_column(JSON)
    # the cluster's ETag of its part (an upload mapped onto the cluster's): what completion
    # names, so a cluster part that is not the one this row describes fails completion
    cluster_etag: Mapped[str | None] = mapped_column(String(256), nullable=True, default=None)
