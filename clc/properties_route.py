"""The admin API's cloud properties (`eucasim property get|set`), signed like every admin
route. The behaviour is clc/properties.py; here its refusals become HTTP answers whose detail
carries an error code and a message the CLI prints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, HTTPException

from clc.properties import BadValue, InUse, NotApplied, Properties, UnknownProperty
from services.internal import InternalAuth
from services.messages.admin import (ADMIN_PROPERTIES_ROUTE, ADMIN_PROPERTY_ROUTE, NewValue,
                                     PropertyList, PropertyView)


@contextmanager
def _as_http_errors() -> Iterator[None]:
    try:
        yield
    except UnknownProperty as exc:
        raise HTTPException(404, {"code": "InvalidProperty.NotFound", "message": exc.args[0]}) from None
    except BadValue as exc:
        raise HTTPException(400, {"code": "InvalidParameterValue", "message": str(exc)}) from None
    except InUse as exc:
        raise HTTPException(409, {"code": "InvalidAddress.InUse", "message": str(exc)}) from None
    except NotApplied as exc:
        raise HTTPException(503, {"code": "Unavailable", "message": str(exc)}) from None


def properties_router(properties: Properties, auth: InternalAuth) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])

    @router.get(ADMIN_PROPERTIES_ROUTE)
    def list_properties() -> PropertyList:
        return PropertyList(properties=properties.describe())

    @router.get(ADMIN_PROPERTY_ROUTE)
    def get_property(name: str) -> PropertyView:
        with _as_http_errors():
            return properties.describe(name)[0]

    @router.put(ADMIN_PROPERTY_ROUTE)
    def set_property(name: str, body: NewValue) -> PropertyView:
        # Sync: it may wait on each zone's CC, in the threadpool.
        with _as_http_errors():
            return properties.set(name, body.value)

    return router
