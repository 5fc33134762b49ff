"""Blobs no row names, swept when Walrus starts. A blob is committed before the row naming it
is written, and a row is deleted before its blobs are: so a Walrus killed between the two
leaves a whole blob that no object, version or part will ever name. At start nothing is in
flight, so every such blob is one of those (in whichever store holds them: walrus/blobs.py).

On a store whose cluster holds Walrus's multipart uploads (walrus/s3_multipart.py) the sweep
also compares the cluster's open uploads with Walrus's: one the cluster holds and no row names
(Walrus died between opening it and writing its row, or mid-way through a blob's own upload)
is aborted; one a row names and the cluster no longer holds (completed there, Walrus died
before writing the object's row) is dropped, and the blob the cluster assembled, which then no
row names, is swept with the other orphans."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from walrus import catalog
from walrus.blobs import BlobStore, cluster_uploads
from walrus.catalog import segment_blobs
from walrus.models import Object, ObjectVersion, Part, Upload

LOG = logging.getLogger(__name__)


def named_blobs(db: Session) -> set[str]:
    named: set[str] = set(db.scalars(select(Part.blob_id)))
    named.update(b for b in db.scalars(select(Upload.blob_id)) if b is not None)
    for model in (Object, ObjectVersion):
        for segments in db.scalars(select(model.segments)):
            named.update(segment_blobs(segments or []))
    return named


def _settle_uploads(db: Session, blobs: BlobStore) -> None:
    uploads = cluster_uploads(blobs)
    if uploads is None:
        return
    on_cluster = set(uploads.open_uploads())
    rows = db.execute(select(Upload.upload_id, Upload.blob_id, Upload.cluster_upload_id)
                      .where(Upload.blob_id.is_not(None))).all()
    known = {(blob_id, cluster_id) for _, blob_id, cluster_id in rows}
    for blob_id, cluster_id in sorted(on_cluster - known):
        uploads.drop_unknown(blob_id, cluster_id)
    gone = [upload_id for upload_id, blob_id, cluster_id in rows
            if (blob_id, cluster_id) not in on_cluster]
    for upload_id in gone:
        catalog.delete_upload(db, upload_id)
    db.flush()
    if on_cluster - known or gone:
        LOG.warning("aborted %d cluster upload(s) no upload names and dropped %d upload(s) the "
                    "cluster no longer holds (left by a crash)", len(on_cluster - known),
                    len(gone))


def sweep(db: Session, blobs: BlobStore) -> list[str]:
    """Delete the blobs no row names (only while nothing else writes); returns their ids."""
    _settle_uploads(db, blobs)
    named = named_blobs(db)
    orphans = [blob_id for blob_id in blobs.stored_ids() if blob_id not in named]
    blobs.delete(orphans)
    if orphans:
        LOG.warning("deleted %d blob(s) no object or part names (left by a crash)", len(orphans))
    return orphans
