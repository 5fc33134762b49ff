"""Walrus's gauges, read when Prometheus scrapes: objects and bytes per bucket, the current
objects and the noncurrent versions kept beside them (delete markers are not objects)."""

from __future__ import annotations

from sqlalchemy import func, select

from services.db import Database
from services.metrics import Samples, ServiceMetrics
from walrus.models import Object, ObjectVersion


def walrus_gauges(metrics: ServiceMetrics, db: Database) -> None:
    def totals(kind: str) -> Samples:
        model = Object if kind == "current" else ObjectVersion
        with db.session() as session:
            rows = session.execute(
                select(model.bucket, func.count(), func.coalesce(func.sum(model.size), 0))
                .where(model.delete_marker.is_(False)).group_by(model.bucket)).all()
        return [((bucket, kind), count, size) for bucket, count, size in rows]  # type: ignore[misc]

    def both() -> list[tuple[tuple[str, str], int, int]]:
        return [*totals("current"), *totals("noncurrent")]  # type: ignore[list-item]

    metrics.gauge("eucasim_walrus_objects", "Objects stored, per bucket (current, or noncurrent "
                  "versions kept).", ["bucket", "version"],
                  lambda: [(labels, count) for labels, count, _ in both()])
    metrics.gauge("eucasim_walrus_bytes", "Bytes of object data stored, per bucket.",
                  ["bucket", "version"], lambda: [(labels, size) for labels, _, size in both()])
