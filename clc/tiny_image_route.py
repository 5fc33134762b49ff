"""`POST /internal/images/tiny` on the CLC: the launcher calls it once every service is up
(services/ may not import clc/, so it cannot register the first image itself)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from clc.accounts import ensure_admin
from clc.tiny_image import register_tiny_image
from services.config import CloudConfig
from services.db import Database
from services.messages.images import TINY_IMAGE_ROUTE, TinyImage


def tiny_image_router(db: Database, config: CloudConfig, internal_auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(internal_auth)])

    @router.post(TINY_IMAGE_ROUTE, response_model=TinyImage)
    def tiny_image() -> TinyImage:  # sync: FastAPI runs it in a worker thread
        with db.session() as session:
            admin = ensure_admin(session)
            return TinyImage(image_id=register_tiny_image(session, config, admin))

    return router
