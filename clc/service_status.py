"""The admin API's view of every service and its state (GET /internal/admin/services), for
`eucasim describe-services`: asked of the services themselves (services/service_states.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clc.zone_directory import ZoneDirectory

from services.config import CloudConfig
from services.internal import InternalAuth
from services.messages.admin import ADMIN_SERVICES_ROUTE, ServiceList
from services.service_states import describe_services


def services_router(config: CloudConfig, directory: ZoneDirectory, auth: InternalAuth) -> APIRouter:
    def locate(service: str, zone: str) -> tuple[str, str]:
        found = directory.locate(service, zone)
        return found.name, found.url

    router = APIRouter(dependencies=[Depends(auth)])

    @router.get(ADMIN_SERVICES_ROUTE)
    def list_services() -> ServiceList:
        # Sync: it waits on the other services' health routes, in the threadpool.
        return ServiceList(services=describe_services(config, self_url=config.service_url("clc"),
                                                      locate=locate))

    return router
