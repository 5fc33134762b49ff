"""The web console at /console/: the cloud as a person sees it — topology, nodes, instances,
volumes and snapshots, a zone's network plan and a request's trace — served by the CLC as
plain HTML with a little JavaScript that keeps each page live. No build step and no CDN:
templates/ and static/ are all it needs.

`install_console` is the one call clc/app.py makes."""

from __future__ import annotations

from fastapi import FastAPI

from clc.console.peek import Peek
from clc.console.routes import console_router
from clc.console.session import Sessions
from clc.zone_service import Directory
from services.config import CloudConfig
from services.db import Database
from services.tracing import TraceRecorder


def install_console(app: FastAPI, config: CloudConfig, db: Database, recorder: TraceRecorder,
                    directory: Directory | None = None) -> Peek:
    """Mount the console's routes; the returned Peek holds kept clients to close at shutdown."""
    peek = Peek(config, directory)
    app.include_router(console_router(db, peek, Sessions(db, config.CLOUD_SECRET), recorder,
                                      secure_cookie=config.PUBLIC_HTTPS))
    return peek
