"""Blob files no row names, swept when Walrus starts. A blob is committed (renamed into
place, fsynced) before the row naming it is written, and a row is deleted before its blobs
are: so a Walrus killed between the two leaves a whole file that no object, version or part
will ever name. At start nothing is in flight, so every such file is one of those."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from walrus.blobs import BlobStore
from walrus.catalog import segment_blobs
from walrus.models import Object, ObjectVersion, Part

LOG = logging.getLogger(__name__)


def named_blobs(db: Session) -> set[str]:
    named: set[str] = set(db.scalars(select(Part.blob_id)))
    for model in (Object, ObjectVersion):
        for segments in db.scalars(select(model.segments)):
            named.update(segment_blobs(segments or []))
    return named


def sweep(db: Session, blobs: BlobStore) -> list[str]:
    """Delete the blob files no row names (only while nothing else writes); returns their ids."""
    named = named_blobs(db)
    orphans = [f.name for folder in blobs.root.iterdir() if folder.name != "tmp" and folder.is_dir()
               for f in folder.iterdir() if f.name not in named]
    blobs.delete(orphans)
    if orphans:
        LOG.warning("deleted %d blob file(s) no object or part names (left by a crash)", len(orphans))
    return orphans
