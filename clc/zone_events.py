"""Where a zone's CC pushes what changed (ZoneEvents, at CLC_ZONE_EVENTS_ROUTE): signed like
every internal call, and accepted only under a subscription key this CLC gave out, which is
a configured zone's name. The work is the reconciler's (`Reconciler.apply_events`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from clc.reconcile import Reconciler
from services.config import CloudConfig
from services.messages.cluster import CLC_ZONE_EVENTS_ROUTE, ZoneEvents, ZoneEventsAnswer


def zone_events_router(config: CloudConfig, reconciler: Reconciler, auth: Any) -> APIRouter:
    router = APIRouter()

    # Sync: it writes the database, so it runs in the threadpool, off the event loop.
    @router.post(CLC_ZONE_EVENTS_ROUTE, dependencies=[Depends(auth)])
    def zone_events(events: ZoneEvents) -> ZoneEventsAnswer:
        if events.key not in config.zones:
            raise HTTPException(403, f"'{events.key}' is no subscription of this cloud controller "
                                f"(its zones: {', '.join(config.zones)})")
        changed, stale = reconciler.apply_events(events.key, events)
        return ZoneEventsAnswer(changed=len(changed), capacity_stale=stale)

    return router
