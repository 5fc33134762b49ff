"""The SC's gauges, read when Prometheus scrapes: volumes (count and GiB) by state, snapshots
by state, and the progress of each snapshot still being taken."""

from __future__ import annotations

from sqlalchemy import func, select

from sc.models import Snapshot, Volume
from services.db import Database
from services.metrics import Samples, ServiceMetrics


def sc_gauges(metrics: ServiceMetrics, db: Database) -> None:
    def volumes(column: str) -> Samples:
        measure = func.count() if column == "count" else func.coalesce(func.sum(Volume.size_gib), 0)
        with db.session() as session:
            rows = session.execute(select(Volume.state, measure).group_by(Volume.state)).all()
        return [((state,), value) for state, value in rows]

    def snapshots() -> Samples:
        with db.session() as session:
            rows = session.execute(select(Snapshot.state, func.count()).group_by(Snapshot.state)).all()
        return [((state,), count) for state, count in rows]

    def progress() -> Samples:
        with db.session() as session:
            rows = session.execute(select(Snapshot.id, Snapshot.volume_id, Snapshot.progress)
                                   .where(Snapshot.state == "pending")).all()
        return [((snap, volume), percent) for snap, volume, percent in rows]

    metrics.gauge("eucasim_sc_volumes", "Volumes by state.", ["state"], lambda: volumes("count"))
    metrics.gauge("eucasim_sc_volume_gibibytes", "GiB of volumes by state.", ["state"],
                  lambda: volumes("size"))
    metrics.gauge("eucasim_sc_snapshots", "Snapshots by state.", ["state"], snapshots)
    metrics.gauge("eucasim_sc_snapshot_progress_percent",
                  "Progress of each snapshot being taken (state pending).",
                  ["snapshot", "volume"], progress)
