"""What every eucasim FastAPI service has: a request id on every call, the trace recorder,
a health route, the internal trace route the CLC gathers traces from, the list of its routes
(so a test can try every internal one unsigned), and /metrics (requests through FastAPI counted
here; the EC2 and S3 front doors count their own). No /docs, /redoc or /openapi.json: they
would describe the internal API to anyone who asks, and nothing reads them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts

from services import logs
from services.db import WRITES
from services.faults import PROCESS
from services.messages.backup import QUIESCE_ROUTE, RESUME_ROUTE, Quiesce, WriteState
from services.internal import InternalAuth
from services.messages.admin import HEALTH_ROUTE, ROUTES_ROUTE, RouteInfo, RouteList, ServiceHealth
from services.metrics import ServiceMetrics, mount_metrics
from services.messages.faults import PROCESS_FAULTS_ROUTE, InjectProcessFault, ProcessFaultList
from services.tracing import (REQUEST_ID_HEADER, Trace, TraceRecorder, bind_request_id,
                              new_request_id, unbind_request_id)

CALLS = logging.getLogger("eucasim.calls")

# Calls that come every round whether or not anything changed (the polls CC → NC and CLC → CC,
# and the CLC's level-triggered network intent, whose changes the CC logs itself) are logged
# as GETs are, at DEBUG; every other call changes something and is logged at INFO.
ROUTINE = ("/internal/describe", "/internal/resources", "/internal/network")


def make_service_app(service: str, secret: str, log_level: str = "INFO",
                     app_class: type[FastAPI] = FastAPI,
                     **fastapi_args: object) -> tuple[FastAPI, TraceRecorder]:
    """`app_class`: a FastAPI subclass for a service that routes some requests itself before
    FastAPI's own per-request work (Walrus's S3 front door)."""
    logs.configure(service, log_level)
    app = app_class(title=f"eucasim {service}", docs_url=None, redoc_url=None, openapi_url=None,
                  **fastapi_args)  # type: ignore[arg-type]
    recorder = TraceRecorder(service)
    app.state.recorder = recorder
    metrics = ServiceMetrics(service)
    app.state.metrics = metrics
    app.state.internal_auth = InternalAuth(secret)

    @app.middleware("http")
    async def request_id_and_timing(request: Request,
                                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        token = bind_request_id(request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            elapsed = time.perf_counter() - started
            path = request.url.path
            quiet = request.method == "GET" or path.endswith(ROUTINE)
            CALLS.log(logging.DEBUG if quiet and response.status_code < 500 else logging.INFO,
                      "%s %s -> %d in %.1f ms", request.method, path, response.status_code,
                      elapsed * 1000)
        finally:
            unbind_request_id(token)
        # By the route's template (/internal/instances/{instance_id}), not the path: one series
        # per route, not one per instance.
        route = request.scope.get("route")
        metrics.observe(f"{request.method} {getattr(route, 'path', 'unrouted')}",
                        str(response.status_code), elapsed)
        if request.url.path.startswith("/internal/") and not request.url.path.startswith("/internal/trace"):
            recorder.record("replied", f"{request.method} {request.url.path} -> {response.status_code}",
                            request_id=request_id, elapsed_ms=round(elapsed * 1000, 3))
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    guard = [Depends(InternalAuth(secret, skewed=False))]

    @app.get(PROCESS_FAULTS_ROUTE, dependencies=guard)
    def process_faults() -> ProcessFaultList:
        return PROCESS.listing()

    @app.post(PROCESS_FAULTS_ROUTE, dependencies=guard)
    def inject_process_fault(body: InjectProcessFault) -> ProcessFaultList:
        PROCESS.inject(body)
        return PROCESS.listing()

    @app.delete(PROCESS_FAULTS_ROUTE, dependencies=guard)
    def clear_process_faults() -> ProcessFaultList:
        PROCESS.clear()
        return PROCESS.listing()

    # Async, off FastAPI's threadpool: while writes are paused, requests that wait at the gate
    # may fill that pool, and the resume must still get through.
    @app.post(QUIESCE_ROUTE, dependencies=guard)
    async def quiesce(body: Quiesce) -> WriteState:
        busy = await asyncio.to_thread(WRITES.close, body.hold_s, body.drain_s)
        return WriteState(service=service, paused=True, busy=busy)

    @app.post(RESUME_ROUTE, dependencies=guard)
    async def resume() -> WriteState:
        WRITES.open()
        return WriteState(service=service, paused=False)

    # A service may set app.state.health_check to a function that says how it is (state,
    # reason), e.g. NOTREADY while what it needs is missing; by default answering is ENABLED.
    app.state.health_check = None

    @app.get(HEALTH_ROUTE)
    def health() -> ServiceHealth:
        check = app.state.health_check
        if check is None:
            return ServiceHealth(service=service)
        state, reason = check()
        return ServiceHealth(service=service, state=state, reason=reason)

    mount_metrics(app, metrics)

    @app.get("/internal/trace/{request_id}", dependencies=[Depends(app.state.internal_auth)])
    def trace(request_id: str) -> Trace:
        return Trace(request_id=request_id, steps=recorder.steps(request_id))

    @app.get(ROUTES_ROUTE, dependencies=[Depends(app.state.internal_auth)])
    def routes() -> RouteList:
        # Read when asked, not now: the service adds its own routes after this returns. Through
        # FastAPI's contexts, which see into included routers (app.routes holds them unopened).
        return RouteList(service=service, routes=[
            RouteInfo(method=method, path=route.path, internal="/internal/" in route.path)
            for route in iter_route_contexts(app.routes) if route.path
            for method in sorted(route.methods or {"*"})])

    return app, recorder
