"""The console's HTTP face: sign-in and out, one page per thing a person wants to see, and for
each page a fragment of itself (`?fragment=1`) that the page's script fetches every couple of
seconds to stay live. Pages are drawn by Jinja2 templates from what views.py gathers; the
routes are plain functions (FastAPI runs them in its thread pool, where the database and the
internal calls may block)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from clc.console import views
from clc.console.peek import Peek
from clc.console.session import COOKIE, COOKIE_PATH, MAX_AGE_S, Sessions, Viewer
from services.db import Database
from services.tracing import TraceRecorder

HERE = Path(__file__).parent
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
POLL_MS = 2000
PAGES = (("topology", "Topology"), ("nodes", "Nodes"), ("instances", "Instances"),
         ("volumes", "Volumes"), ("network", "Network"), ("trace", "Traces"))
RECENT = 25


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.globals["PAGES"] = PAGES
    env.globals["POLL_MS"] = POLL_MS
    env.filters["clock"] = lambda at: datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M:%S")
    return env


def console_router(db: Database, peek: Peek, sessions: Sessions, recorder: TraceRecorder,
                   secure_cookie: bool = False) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    env = _environment()

    def html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**context), status_code=status)

    def viewer_of(request: Request) -> Viewer | None:
        return sessions.viewer(request.cookies.get(COOKIE))

    def page(request: Request, name: str, gather: Callable[[Viewer], dict[str, Any]]) -> Response:
        viewer = viewer_of(request)
        fragment = request.query_params.get("fragment") == "1"
        if viewer is None:
            if fragment:
                return Response("signed out", status_code=401, media_type="text/plain")
            return RedirectResponse("/console/login", status_code=303)
        context = {"viewer": viewer, "page": name, **gather(viewer)}
        if fragment:
            return html(f"_{name}.html", **context)
        query = request.url.query
        poll = f"{request.url.path}?{query + '&' if query else ''}fragment=1"
        return html("page.html", poll=poll, partial=f"_{name}.html", **context)

    @router.get("")
    def bare() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/")
    def home(request: Request) -> RedirectResponse:
        target = "/console/topology" if viewer_of(request) else "/console/login"
        return RedirectResponse(target, status_code=303)

    @router.get("/login")
    def login_form() -> HTMLResponse:
        return html("login.html")

    @router.post("/login")
    def login(access_key: str = Form(""), secret_key: str = Form("")) -> Response:
        signed = sessions.sign_in(access_key, secret_key) if access_key and secret_key else None
        if signed is None:
            return html("login.html", status=401, refused=True, access_key=access_key)
        _viewer, cookie = signed
        response = RedirectResponse("/console/topology", status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=MAX_AGE_S, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=secure_cookie)
        return response

    @router.post("/logout")
    def logout() -> RedirectResponse:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "no-cache"})

    @router.get("/topology")
    def topology(request: Request) -> Response:
        return page(request, "topology", lambda v: {"topology": views.topology(peek, db, v)})

    @router.get("/nodes")
    def nodes(request: Request) -> Response:
        return page(request, "nodes", lambda v: {"zones": views.zone_nodes(peek, db, v)})

    @router.get("/instances")
    def instances(request: Request) -> Response:
        return page(request, "instances", lambda v: {"instances": views.instance_rows(db, v)})

    @router.get("/volumes")
    def volumes(request: Request) -> Response:
        def gather(viewer: Viewer) -> dict[str, Any]:
            vols, snaps = views.volume_rows(db, viewer)
            return {"volumes": vols, "snapshots": snaps}
        return page(request, "volumes", gather)

    @router.get("/network")
    def network(request: Request, zone: str = "") -> Response:
        zones = peek.config.zones
        chosen = zone if zone in zones else zones[0]
        return page(request, "network", lambda v: {
            "zones": zones, "zone": chosen, "plan": views.network_plan(peek, v, chosen),
            "account_names": views.account_names(db, v)})

    @router.get("/trace")
    def trace(request: Request, request_id: str = "") -> Response:
        def gather(viewer: Viewer) -> dict[str, Any]:
            recent = [(rid, step) for rid, step in recorder.recent(RECENT * 20)
                      if step.kind == "received" and "account" in step.detail
                      and (viewer.is_admin or step.detail["account"] == viewer.account_id)][:RECENT]
            shown = views.trace(peek, viewer, request_id.strip()) if request_id.strip() else None
            return {"recent": recent, "trace": shown, "request_id": request_id.strip()}
        return page(request, "trace", gather)

    return router
