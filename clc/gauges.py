"""The CLC's gauges, read when Prometheus scrapes: instances by state and zone, as the CLC
records them (what users see in DescribeInstances)."""

from __future__ import annotations

from sqlalchemy import func, select

from clc.models.instances import Instance
from services.db import Database
from services.metrics import Samples, ServiceMetrics


def clc_gauges(metrics: ServiceMetrics, db: Database) -> None:
    def by_state() -> Samples:
        with db.session() as session:
            rows = session.execute(select(Instance.zone, Instance.state, func.count())
                                   .group_by(Instance.zone, Instance.state)).all()
        return [((zone, state), count) for zone, state, count in rows]

    metrics.gauge("eucasim_instances", "Instances by zone and state.", ["zone", "state"], by_state)
