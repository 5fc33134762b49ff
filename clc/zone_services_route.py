"""The admin API's zone services (`eucasim register-cluster|deregister-cluster|register-sc|
deregister-sc`), signed like every admin route; the behaviour is clc/zone_directory.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, HTTPException

from clc.zone_directory import BadSpec, Conflict, NotRegistered, ZoneDirectory
from services.internal import InternalAuth
from services.messages.admin import (ADMIN_ZONE_SERVICE_ROUTE, ADMIN_ZONE_SERVICES_ROUTE,
                                     ZoneServiceList, ZoneServiceSpec, ZoneServiceType,
                                     ZoneServiceView)


@contextmanager
def _as_http_errors() -> Iterator[None]:
    try:
        yield
    except BadSpec as exc:
        raise HTTPException(400, {"code": "InvalidParameterValue", "message": str(exc)}) from None
    except Conflict as exc:
        raise HTTPException(409, {"code": "InvalidService.Duplicate", "message": str(exc)}) from None
    except NotRegistered as exc:
        raise HTTPException(404, {"code": "InvalidService.NotFound", "message": exc.args[0]}) from None


def zone_services_router(directory: ZoneDirectory, auth: InternalAuth) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])

    @router.get(ADMIN_ZONE_SERVICES_ROUTE)
    def list_zone_services() -> ZoneServiceList:
        return ZoneServiceList(services=directory.registered())

    @router.post(ADMIN_ZONE_SERVICES_ROUTE, status_code=201)
    def register(body: ZoneServiceSpec) -> ZoneServiceView:
        # Sync: it asks the service at the address first, in the threadpool.
        with _as_http_errors():
            return directory.register(body)

    @router.delete(ADMIN_ZONE_SERVICE_ROUTE)
    def deregister(type: ZoneServiceType, name: str) -> ZoneServiceView:  # noqa: A002 (the route's word)
        with _as_http_errors():
            return directory.deregister(type, name)

    return router
