"""Blobs no row names, swept when Walrus starts. A blob is committed before the row naming it
is written, and a row is deleted before its blobs are: so a Walrus killed between the two
leaves a whole blob that no object, version or part will ever name. At start nothing is in
flight, so every such blob is one of those (in whichever store holds them: walrus/blobs.py)."""

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
    """Delete the blobs no row names (only while nothing else writes); returns their ids."""
    named = named_blobs(db)
    orphans = [blob_id for blob_id in blobs.stored_ids() if blob_id not in named]
    blobs.delete(orphans)
    if orphans:
        LOG.warning("deleted %d blob(s) no object or part names (left by a crash)", len(orphans))
    return orphans
