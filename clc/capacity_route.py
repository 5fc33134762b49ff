"""The CLC's own capacity view of each zone (CLC_ZONE_CAPACITY_ROUTE): what RunInstances is
admitted against. `eucasim up` waits until it counts every node before printing its banner, so
a launch right after the banner is not refused for a view taken before the CC's first poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from clc.placement import Launches
from clc.zones_client import ZoneError
from services.config import CloudConfig
from services.messages.cluster import CLC_ZONE_CAPACITY_ROUTE, ZoneCapacity


def capacity_router(config: CloudConfig, launches: Launches, auth: Any) -> APIRouter:
    router = APIRouter()

    # Sync: asking the zone is a blocking HTTP call, so it runs in the threadpool.
    @router.get(CLC_ZONE_CAPACITY_ROUTE, dependencies=[Depends(auth)])
    def zone_capacity(zone: str) -> ZoneCapacity:
        if zone not in config.zones:
            raise HTTPException(404, f"no zone '{zone}' (this cloud's zones: {', '.join(config.zones)})")
        try:
            return launches.capacity(zone)
        except ZoneError as exc:
            raise HTTPException(503, f"zone {zone} did not answer: {exc}") from None

    return router
